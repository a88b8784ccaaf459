/**
 * The metadata file's text, as buildx (Go's json.MarshalIndent over its decoded exporter
 * response) writes it; and the provenance entries' encoding. No builder needed: the real
 * comparison against buildx's file runs on the rig in build-multiplatform.test.ts.
 */
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { encodeProvenance } from '@ktl/buildkit-client';
import { buildRef, formatMetadata, writeFileAtomic } from '../src/build/metadata';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const dir = mkdtempSync(join(tmpdir(), 'ktl-meta-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('formatMetadata', () => {
  test('base64 of a JSON object is embedded; everything else stays a string; keys in byte order', () => {
    const text = formatMetadata({
      'image.name': 'docker.io/library/app:1',
      'containerimage.digest': 'sha256:aa',
      'containerimage.descriptor': b64(
        '{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:aa","size":645,"annotations":{"b":"2","a":"1"}}',
      ),
      'buildx.build.ref': 'ktl/docker/abc',
      Z: 'upper case sorts first',
    });
    expect(text).toBe(
      [
        '{',
        '  "Z": "upper case sorts first",',
        '  "buildx.build.ref": "ktl/docker/abc",',
        '  "containerimage.descriptor": {',
        '    "mediaType": "application/vnd.oci.image.index.v1+json",',
        '    "digest": "sha256:aa",',
        '    "size": 645,',
        // The builder's key order is kept (Go embeds the raw message).
        '    "annotations": {',
        '      "b": "2",',
        '      "a": "1"',
        '    }',
        '  },',
        '  "containerimage.digest": "sha256:aa",',
        '  "image.name": "docker.io/library/app:1"',
        '}',
      ].join('\n'),
    );
  });

  test('what is not base64 of a non-empty object stays the string it was', () => {
    const m = JSON.parse(
      formatMetadata({
        emptyObject: b64('{}'),
        array: b64('[1,2]'),
        scalar: b64('true'),
        notBase64: 'sha256:0123',
        looseBase64: 'eyJhIjoxfQ', // unpadded: Go's StdEncoding refuses it
        withNewline: `${b64('{"a":1}').slice(0, 4)}\n${b64('{"a":1}').slice(4)}`,
      }),
    ) as Record<string, unknown>;
    expect(m).toEqual({
      emptyObject: b64('{}'),
      array: b64('[1,2]'),
      scalar: b64('true'),
      notBase64: 'sha256:0123',
      looseBase64: 'eyJhIjoxfQ',
      withNewline: { a: 1 },
    });
  });

  test("Go's escaping and layout: HTML characters, empty containers, numbers as written", () => {
    expect(
      formatMetadata({
        s: 'a<b>&c\u2028',
        o: b64('{"x":[],"y":{},"n":1.50,"e":1e3,"t":"<\\u0041>","nested":[{"k":[1,{"z":null}]}]}'),
      }),
    ).toBe(
      [
        '{',
        '  "o": {',
        '    "x": [],',
        '    "y": {},',
        '    "n": 1.50,',
        '    "e": 1e3,',
        '    "t": "\\u003c\\u0041\\u003e",',
        '    "nested": [',
        '      {',
        '        "k": [',
        '          1,',
        '          {',
        '            "z": null',
        '          }',
        '        ]',
        '      }',
        '    ]',
        '  },',
        '  "s": "a\\u003cb\\u003e\\u0026c\\u2028"',
        '}',
      ].join('\n'),
    );
    expect(formatMetadata({})).toBe('{}');
  });

  test('buildx.build.ref: three parts, the last the Solve ref', () => {
    expect(buildRef('docker://unix:///run/docker.sock', 'r1')).toBe('ktl/docker/r1');
    expect(buildRef('unix:///run/buildkit/buildkitd.sock', 'r1')).toBe('ktl/buildkitd/r1');
  });
});

describe('encodeProvenance', () => {
  const predicate = Buffer.from(
    JSON.stringify(
      {
        builder: { id: '' },
        buildType: 'https://mobyproject.org/buildkit@v1',
        materials: [{ uri: 'pkg:docker/x?a=1&b=<2>', digest: { sha256: 'ab' } }],
        invocation: { parameters: { frontend: 'dockerfile.v0' } },
        buildConfig: { llbDefinition: [] },
        metadata: { buildStartedOn: '2026-01-01T00:00:00Z' },
      },
      null,
      2,
    ),
  );
  const decode = (s: string) => Buffer.from(s, 'base64').toString('utf8');

  test('min: no buildConfig, no metadata; a builder without id is left out; compact Go JSON', () => {
    expect(decode(encodeProvenance(predicate, 'min'))).toBe(
      '{"buildType":"https://mobyproject.org/buildkit@v1","materials":[{"uri":"pkg:docker/x?a=1\\u0026b=\\u003c2\\u003e","digest":{"sha256":"ab"}}],"invocation":{"parameters":{"frontend":"dockerfile.v0"}}}',
    );
  });

  test('max: everything the builder recorded; a builder with an id stays', () => {
    const withId = Buffer.from(
      predicate.toString().replace('"id": ""', '"id": "https://ci.example/run/1"'),
    );
    const m = JSON.parse(decode(encodeProvenance(withId, 'max'))) as Record<string, unknown>;
    expect(Object.keys(m)).toEqual([
      'builder',
      'buildType',
      'materials',
      'invocation',
      'buildConfig',
      'metadata',
    ]);
    expect(m.builder).toEqual({ id: 'https://ci.example/run/1' });
  });

  test('what is not a JSON object is refused, not passed on', () => {
    expect(() => encodeProvenance(Buffer.from('[1]'), 'min')).toThrow('not a JSON object');
    expect(() => encodeProvenance(Buffer.from('{'), 'min')).toThrow('is not JSON');
  });
});

describe('writeFileAtomic', () => {
  test('creates the directory, replaces a symlink instead of writing through it, leaves no temporary', () => {
    const target = join(dir, 'elsewhere.txt');
    const path = join(dir, 'sub', 'meta.json');
    writeFileAtomic(path, 'one');
    expect(readFileSync(path, 'utf8')).toBe('one');
    const link = join(dir, 'sub', 'link.json');
    symlinkSync(target, link);
    writeFileAtomic(link, 'two');
    expect(lstatSync(link).isFile()).toBe(true);
    expect(() => readlinkSync(link)).toThrow();
    expect(() => lstatSync(target)).toThrow(); // nothing was written through the link
    expect(readdirSync(join(dir, 'sub')).sort()).toEqual(['link.json', 'meta.json']);
  });
});
