'use strict';
// cbor-x requires this inside try/catch and falls back to its JavaScript decoder.
throw new Error('cbor-extract is not installed: canopy uses cbor-x without native acceleration');
