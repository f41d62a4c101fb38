import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGoDuration, formatGoTime, formatUptime, msToGoDurationJson, normalizeIp } from '../../../core/monitor/format.ts';

test('formatUptime prints nats-server myUptime strings', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [999, '0s'],
    [45_000, '45s'],
    [(3 * 60 + 7) * 1000, '3m7s'],
    [(2 * 3600 + 5) * 1000, '2h0m5s'],
    [((26 * 60 + 3) * 60 + 4) * 1000, '1d2h3m4s'],
    [(((367 * 24 + 3) * 60 + 4) * 60 + 5) * 1000, '1y2d3h4m5s'],
    [-5000, '0s'],
  ];
  for (const [ms, expected] of cases) assert.equal(formatUptime(ms), expected, `${ms} ms`);
});

test('formatGoDuration prints Go time.Duration.String()', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [1, '1ns'],
    [999, '999ns'],
    [1_500, '1.5µs'],
    [1_000, '1µs'],
    [2_250_000, '2.25ms'],
    [3_000_000, '3ms'],
    [123_456_789, '123.456789ms'],
    [1_500_000_000, '1.5s'],
    [60_500_000_000, '1m0.5s'],
    [3_600_000_000_000, '1h0m0s'],
    [(2 * 3600 + 3 * 60 + 4) * 1e9, '2h3m4s'],
  ];
  for (const [ns, expected] of cases) assert.equal(formatGoDuration(ns), expected, `${ns} ns`);
});

test('formatGoTime writes RFC 3339 in UTC with trailing fraction zeros dropped', () => {
  assert.equal(formatGoTime(Date.UTC(2024, 4, 1, 10, 20, 30, 120)), '2024-05-01T10:20:30.12Z');
  assert.equal(formatGoTime(Date.UTC(2024, 4, 1, 10, 20, 30, 0)), '2024-05-01T10:20:30Z');
  assert.equal(formatGoTime(Date.UTC(2024, 4, 1, 10, 20, 30, 7)), '2024-05-01T10:20:30.007Z');
});

test('durations become Go JSON nanoseconds; IPv4-mapped peers lose their ::ffff: prefix', () => {
  assert.equal(msToGoDurationJson(120_000), 120_000_000_000);
  assert.equal(normalizeIp('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(normalizeIp('::1'), '::1');
  assert.equal(normalizeIp('127.0.0.1'), '127.0.0.1');
});
