/**
 * How `ktl build` and `ktl builder ls` are told which builder, besides --builder: a docker
 * context, and buildctl's TLS flags for a builder on `tcp://` (buildkitd, or a Docker engine
 * named docker://tcp://...); build/builder-tls.ts reads the TLS ones.
 */
import { Flags } from '@oclif/core';

export const builderFlags = {
  context: Flags.string({
    description:
      "docker context whose engine builds (its endpoint and TLS material, from the docker CLI's store; else DOCKER_CONTEXT or the docker config's currentContext)",
  }),
  tlscacert: Flags.string({
    description:
      "CA certificate that verifies a tcp:// builder (as buildctl's; for a Docker engine it replaces DOCKER_CERT_PATH/ca.pem)",
  }),
  tlscert: Flags.string({ description: 'client certificate for a tcp:// builder (with --tlskey)' }),
  tlskey: Flags.string({ description: 'key of the --tlscert client certificate' }),
  tlsdir: Flags.string({
    description:
      'directory holding ca.pem, cert.pem and key.pem (or ca.crt, tls.crt and tls.key) for a tcp:// builder',
  }),
  tlsservername: Flags.string({
    description: "name to verify the builder's certificate against, when not the address's host",
  }),
};
