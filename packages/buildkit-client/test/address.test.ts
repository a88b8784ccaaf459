import { describe, expect, test } from '@jest/globals';
import { BuildkitError, formatAddress, parseAddress } from '../src/index';

describe('parseAddress', () => {
  test.each([
    ['unix:///run/buildkit/buildkitd.sock', { kind: 'unix', path: '/run/buildkit/buildkitd.sock' }],
    ['unix:/tmp/b.sock', { kind: 'unix', path: '/tmp/b.sock' }],
    ['tcp://127.0.0.1:1234', { kind: 'tcp', host: '127.0.0.1', port: 1234 }],
    ['tcp://buildkit.example:443/', { kind: 'tcp', host: 'buildkit.example', port: 443 }],
    ['tcp://[::1]:1234', { kind: 'tcp', host: '::1', port: 1234 }],
    [
      'docker://unix:///var/run/docker.sock',
      { kind: 'docker', engine: { kind: 'unix', path: '/var/run/docker.sock' } },
    ],
    ['docker:///srv/d.sock', { kind: 'docker', engine: { kind: 'unix', path: '/srv/d.sock' } }],
    ['docker://', { kind: 'docker', engine: { kind: 'unix', path: '/var/run/docker.sock' } }],
    [
      'docker://tcp://10.0.0.2:2376',
      { kind: 'docker', engine: { kind: 'tcp', host: '10.0.0.2', port: 2376 } },
    ],
    ['  unix:///a.sock  ', { kind: 'unix', path: '/a.sock' }],
  ])('%s', (input, want) => {
    expect(parseAddress(input)).toEqual(want);
  });

  test.each([
    ['', /missing scheme/],
    ['/var/run/docker.sock', /missing scheme/],
    ['unix://relative.sock', /must be absolute/],
    ['tcp://host', /explicit port/],
    ['tcp://host:0', /out of range/],
    ['tcp://host:70000', /out of range/],
    ['ssh://me@host', /unsupported scheme "ssh"/],
    ['docker-container://bk', /unsupported scheme "docker-container"/],
    ['docker:unix:///x', /expected docker:\/\//],
    ['docker://npipe:////./pipe/docker', /unix:\/\/ or tcp:\/\//],
  ])('rejects %j', (input, why) => {
    let err: unknown;
    try {
      parseAddress(input);
    } catch (e) {
      err = e;
    }
    expect(BuildkitError.is(err)).toBe(true);
    expect((err as BuildkitError).code).toBe('E_BAD_ADDRESS');
    expect((err as BuildkitError).message).toMatch(why);
  });

  test.each([
    'unix:///run/buildkit/buildkitd.sock',
    'tcp://127.0.0.1:1234',
    'tcp://[::1]:99',
    'docker://unix:///var/run/docker.sock',
    'docker://tcp://h:2375',
  ])('round-trips %s', (s) => {
    expect(formatAddress(parseAddress(s))).toBe(s);
  });
});
