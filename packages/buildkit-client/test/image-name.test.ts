import { describe, expect, test } from '@jest/globals';
import { isLoopbackRegistry, normalizeImageName } from '../src/image-name';
import { frontendAttrs, namedContextDirs } from '../src/solve-attrs';

describe('normalizeImageName (Docker reference rules)', () => {
  test.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['me/app', 'docker.io/me/app:latest'],
    ['index.docker.io/me/app:v1', 'docker.io/me/app:v1'],
    ['127.0.0.1:5000/ktl/app', '127.0.0.1:5000/ktl/app:latest'],
    ['localhost/app:dev', 'localhost/app:dev'],
    ['registry.example.com/a/b/c:1.0-rc.1', 'registry.example.com/a/b/c:1.0-rc.1'],
    [`app@sha256:${'a'.repeat(64)}`, `docker.io/library/app@sha256:${'a'.repeat(64)}`],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
  ])('%s -> %s', (i, o) => expect(normalizeImageName(i)).toBe(o));

  test.each([
    ['', /empty/],
    ['App', /lowercase/],
    ['app:', /bad tag/],
    ['app:-x', /bad tag/],
    ['a//b', /bad path component/],
    ['app@sha256:xyz', /bad digest/],
    ['-app', /bad path component/],
    ['a b', /bad path component/],
  ])('%j is refused (%s)', (i, why) => expect(() => normalizeImageName(i)).toThrow(why));

  test.each([
    ['127.0.0.1:5000', true],
    ['localhost', true],
    ['[::1]:5000', true],
    ['docker.io', false],
    ['10.0.0.1:5000', false],
  ])('isLoopbackRegistry(%s) = %s', (d, b) => expect(isLoopbackRegistry(d)).toBe(b));
});

describe('frontend attributes (what buildx sends)', () => {
  test('each option maps to its attribute', () => {
    expect(
      frontendAttrs(
        {
          buildArgs: { A: '1' },
          labels: { 'org.x': 'y' },
          target: 'prod',
          platforms: ['linux/amd64', 'linux/arm64'],
          noCache: true,
          pull: true,
          network: 'none',
          addHosts: [
            { host: 'db', ip: '10.0.0.5' },
            { host: 'v6', ip: '::1' },
          ],
          namedContexts: { assets: '/abs/assets', base: 'docker-image://busybox:1' },
        },
        '/ctx/sub/Dockerfile.prod',
      ),
    ).toEqual({
      filename: 'Dockerfile.prod',
      'build-arg:A': '1',
      'label:org.x': 'y',
      target: 'prod',
      platform: 'linux/amd64,linux/arm64',
      'no-cache': '',
      'image-resolve-mode': 'pull',
      'force-network-mode': 'none',
      'add-hosts': 'db=10.0.0.5,v6=::1',
      'context:assets': 'local:named:assets',
      'context:base': 'docker-image://busybox:1',
    });
  });

  test('network default sends nothing; local named contexts become session dirs', () => {
    expect(frontendAttrs({ network: 'default' }, 'Dockerfile')).toEqual({ filename: 'Dockerfile' });
    expect(
      namedContextDirs({ namedContexts: { context: '/a', x: 'https://example.com/x.tar' } }),
    ).toEqual({ 'named:context': '/a' });
  });
});
