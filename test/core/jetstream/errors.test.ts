/**
 * Tests for core/jetstream/api/errors.json, scripts/gen-errors.ts and the module it writes,
 * core/jetstream/api/errors.generated.ts (STYLE.md §2.6 (2), house rule 5).
 * Codes must equal nats-server's server/errors.json and the codes nats.js knows
 * (@nats-io/jetstream `JetStreamApiCodes`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { JetStreamApiCodes } from '@nats-io/jetstream';
import * as generated from '../../../core/jetstream/api/errors.generated.ts';
import {
  JsApiError,
  JsApiErrorCode,
  newConsumerNotFoundError,
  newInvalidJSONError,
  newRestoreSubscribeFailedError,
  newStreamExternalDelPrefixOverlapsError,
  newStreamGeneralError,
  newStreamNotFoundError,
  newStreamWrongLastSequenceError,
} from '../../../core/jetstream/api/errors.generated.ts';
import {
  ERRORS_GENERATED_PATH,
  ERRORS_JSON_PATH,
  checkGenerated,
  expectedModule,
  namesForConstant,
  parseErrorsJson,
  placeholdersOf,
} from '../../../scripts/gen-errors.ts';

const GEN_SCRIPT = 'scripts/gen-errors.ts';
const entries = parseErrorsJson(readFileSync(ERRORS_JSON_PATH, 'utf8'));

function runGenerator(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', GEN_SCRIPT, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('errors.generated.ts is up to date', () => {
  it('matches what errors.json gives, byte for byte', () => {
    const onDisk = readFileSync(ERRORS_GENERATED_PATH, 'utf8');
    assert.equal(onDisk, expectedModule({ json: ERRORS_JSON_PATH, out: ERRORS_GENERATED_PATH }));
  });

  it('gen-errors --check exits 0 on the repository', () => {
    const result = runGenerator(['--check']);
    assert.equal(result.status, 0, result.stderr);
  });

  describe('on a scratch copy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'canopy-gen-errors-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const json = join(dir, 'errors.json');
    const out = join(dir, 'errors.generated.ts');

    it('--check exits 1 with a clear message when the file is missing or stale, and passes after writing', () => {
      writeFileSync(json, readFileSync(ERRORS_JSON_PATH, 'utf8'));
      const missing = runGenerator(['--check', '--json', json, '--out', out]);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /errors\.generated\.ts is missing .*run npm run gen:errors/);

      assert.equal(runGenerator(['--json', json, '--out', out]).status, 0);
      assert.equal(runGenerator(['--check', '--json', json, '--out', out]).status, 0);

      const data = JSON.parse(readFileSync(json, 'utf8')) as Array<{ description: string }>;
      const first = data[0];
      assert.ok(first !== undefined);
      first.description = 'peer is not a member';
      writeFileSync(json, JSON.stringify(data, null, 2));
      const stale = runGenerator(['--check', '--json', json, '--out', out]);
      assert.equal(stale.status, 1);
      assert.match(stale.stderr, /errors\.generated\.ts is stale .*run npm run gen:errors/);
      assert.deepEqual(checkGenerated({ json, out }).ok, false);
    });
  });
});

describe('errors.json', () => {
  it('holds the nats-server table (server/errors.json @0090359): 225 entries, err_codes 10002..10226 without gaps', () => {
    assert.equal(entries.length, 225);
    const codes = entries.map((e) => e.error_code).sort((a, b) => a - b);
    // nats-server's errors_gen.go refuses duplicate and non-contiguous codes; so do we.
    assert.deepEqual(codes, Array.from({ length: 225 }, (_, i) => 10002 + i));
  });

  it('matches NATS-SPEC.md §2.10 on a sample of status, err_code and description', () => {
    const byConstant = new Map(entries.map((e) => [e.constant, e]));
    const sample: Array<[string, number, number, string]> = [
      ['JSStreamNotFoundErr', 404, 10059, 'stream not found'],
      ['JSConsumerNotFoundErr', 404, 10014, 'consumer not found'],
      ['JSNoMessageFoundErr', 404, 10037, 'no message found'],
      ['JSStreamNameExistErr', 400, 10058, 'stream name already in use with a different configuration'],
      ['JSStreamSubjectOverlapErr', 400, 10065, 'subjects overlap with an existing stream'],
      ['JSStreamWrongLastSequenceErrF', 400, 10071, 'wrong last sequence: {seq}'],
      ['JSStreamWrongLastSequenceConstantErr', 400, 10164, 'wrong last sequence'],
      ['JSStreamStoreFailedF', 503, 10077, '{err}'],
      ['JSNotEnabledForAccountErr', 503, 10039, 'JetStream not enabled for account'],
      ['JSNotEnabledErr', 503, 10076, 'JetStream not enabled'],
      ['JSStreamReplicasNotSupportedErr', 500, 10074, 'replicas > 1 not supported in non-clustered mode'],
      ['JSRequiredApiLevelErr', 412, 10185, 'JetStream minimum api level required'],
      ['JSStreamDuplicateMessageConflict', 409, 10158, 'duplicate message id is in process'],
    ];
    for (const [constant, code, errCode, description] of sample) {
      const entry = byConstant.get(constant);
      assert.ok(entry, constant);
      assert.deepEqual([entry.code, entry.error_code, entry.description], [code, errCode, description], constant);
    }
  });
});

describe('JsApiErrorCode', () => {
  it('equals the codes nats.js knows (JetStreamApiCodes in @nats-io/jetstream)', () => {
    // Every name nats.js has, mapped to ours; a new nats.js name fails here until mapped.
    const ours: Record<string, number> = {
      ConsumerNotFound: JsApiErrorCode.consumerNotFound,
      StreamNotFound: JsApiErrorCode.streamNotFound,
      JetStreamNotEnabledForAccount: JsApiErrorCode.notEnabledForAccount,
      StreamWrongLastSequence: JsApiErrorCode.streamWrongLastSequence,
      StreamWrongLastSequenceUnknown: JsApiErrorCode.streamWrongLastSequenceConstant,
      NoMessageFound: JsApiErrorCode.noMessageFound,
    };
    assert.deepEqual(ours, { ...JetStreamApiCodes });
  });

  it('has the literal codes house rule 5 names', () => {
    assert.equal(JsApiErrorCode.consumerNotFound, 10014);
    assert.equal(JsApiErrorCode.noMessageFound, 10037);
    assert.equal(JsApiErrorCode.notEnabledForAccount, 10039);
    assert.equal(JsApiErrorCode.streamNotFound, 10059);
    assert.equal(JsApiErrorCode.streamWrongLastSequence, 10071);
    assert.equal(JsApiErrorCode.notEnabled, 10076);
  });

  it('has one key per entry, in errors.json order', () => {
    const expected = entries.map((e) => [namesForConstant(e.constant).key, e.error_code]);
    assert.deepEqual(Object.entries(JsApiErrorCode), expected);
  });
});

describe('naming rule', () => {
  it('strips JS and one of ErrorF, ErrF, Err, F', () => {
    const cases: Array<[string, string, string]> = [
      ['JSStreamNotFoundErr', 'streamNotFound', 'newStreamNotFoundError'],
      ['JSStreamNameExistErr', 'streamNameExist', 'newStreamNameExistError'],
      ['JSStreamWrongLastSequenceErrF', 'streamWrongLastSequence', 'newStreamWrongLastSequenceError'],
      ['JSStreamGeneralErrorF', 'streamGeneral', 'newStreamGeneralError'],
      ['JSStreamInvalidConfigF', 'streamInvalidConfig', 'newStreamInvalidConfigError'],
      ['JSConsumerAlreadyExists', 'consumerAlreadyExists', 'newConsumerAlreadyExistsError'],
      ['JSInvalidJSONErr', 'invalidJSON', 'newInvalidJSONError'],
    ];
    for (const [constant, key, ctor] of cases) assert.deepEqual(namesForConstant(constant), { key, ctor });
    assert.throws(() => namesForConstant('StreamNotFoundErr'), /does not start with JS/);
  });

  it('finds placeholders once each, in order', () => {
    assert.deepEqual(placeholdersOf('JetStream unable to subscribe to restore snapshot {subject}: {err}'), ['subject', 'err']);
    assert.deepEqual(placeholdersOf('{err} and {err}'), ['err']);
    assert.deepEqual(placeholdersOf('bad request'), []);
  });

  it('refuses duplicate codes and constants', () => {
    const one = { constant: 'JSAErr', code: 400, error_code: 1, description: 'a', comment: '', help: '', url: '', deprecates: '' };
    assert.throws(() => parseErrorsJson(JSON.stringify([one, { ...one, constant: 'JSBErr' }])), /duplicate error_code 1/);
    assert.throws(() => parseErrorsJson(JSON.stringify([one, { ...one, error_code: 2 }])), /duplicate constant JSAErr/);
    assert.throws(() => parseErrorsJson(JSON.stringify([{ ...one, code: '400' }])), /\.code: expected an integer/);
  });
});

describe('JsApiError constructors', () => {
  it('newStreamNotFoundError() gives the response error object nats clients parse', () => {
    const err = newStreamNotFoundError();
    assert.ok(err instanceof JsApiError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'JsApiError');
    assert.equal(err.status, 404);
    assert.equal(err.errCode, 10059);
    assert.equal(err.description, 'stream not found');
    assert.equal(err.message, 'stream not found (10059)');
    assert.deepEqual(Object.keys(err.toJSON()), ['code', 'err_code', 'description']);
    assert.equal(
      JSON.stringify({ type: 'io.nats.jetstream.api.v1.stream_info_response', error: err }),
      '{"type":"io.nats.jetstream.api.v1.stream_info_response","error":{"code":404,"err_code":10059,"description":"stream not found"}}',
    );
  });

  it('renders templated descriptions exactly', () => {
    assert.equal(newStreamWrongLastSequenceError({ seq: 42 }).description, 'wrong last sequence: 42');
    assert.equal(newStreamWrongLastSequenceError({ seq: 2n ** 64n - 1n }).description, 'wrong last sequence: 18446744073709551615');
    assert.equal(
      newStreamExternalDelPrefixOverlapsError({ prefix: 'ext.deliver', subject: 'ext.>' }).description,
      'stream external delivery prefix ext.deliver overlaps with stream subject ext.>',
    );
    assert.equal(
      newRestoreSubscribeFailedError({ subject: '$JS.SNAPSHOT.RESTORE.S.x', err: new Error('permissions violation') }).description,
      'JetStream unable to subscribe to restore snapshot $JS.SNAPSHOT.RESTORE.S.x: permissions violation',
    );
    const invalid = newInvalidJSONError({ err: 'unexpected end of JSON input' });
    assert.deepEqual(invalid.toJSON(), { code: 400, err_code: 10025, description: 'invalid JSON: unexpected end of JSON input' });
  });

  it('substitutes in one pass: text put in is not scanned again', () => {
    assert.equal(newStreamGeneralError({ err: 'literal {err} and ${x}' }).description, 'literal {err} and ${x}');
    assert.equal(
      newStreamExternalDelPrefixOverlapsError({ prefix: '{subject}', subject: 's' }).description,
      'stream external delivery prefix {subject} overlaps with stream subject s',
    );
  });

  it('unless: returns the given JsApiError, ignores anything else', () => {
    const notFound = newStreamNotFoundError();
    assert.equal(newConsumerNotFoundError({ unless: notFound }), notFound);
    assert.equal(newStreamGeneralError({ err: 'x' }, { unless: notFound }), notFound);
    const plain = newConsumerNotFoundError({ unless: new Error('disk full') });
    assert.equal(plain.errCode, 10014);
    assert.equal(newConsumerNotFoundError({ unless: undefined }).errCode, 10014);
  });

  it('exist for every entry and give its status, err_code and description', () => {
    const exports = generated as unknown as Record<string, unknown>;
    for (const entry of entries) {
      const { ctor } = namesForConstant(entry.constant);
      const make = exports[ctor];
      assert.equal(typeof make, 'function', ctor);
      const names = placeholdersOf(entry.description);
      const args = Object.fromEntries(names.map((n) => [n, n === 'err' ? new Error(`<${n}>`) : `<${n}>`]));
      const err = (make as (...a: unknown[]) => unknown)(...(names.length === 0 ? [] : [args]));
      assert.ok(err instanceof JsApiError, ctor);
      const description = entry.description.replaceAll(/\{([^{}]+)\}/g, '<$1>');
      assert.deepEqual(err.toJSON(), { code: entry.code, err_code: entry.error_code, description }, ctor);
    }
  });
});
