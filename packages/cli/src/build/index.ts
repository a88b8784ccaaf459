export { EXIT_CODE_HELP, ExitCode, type ExitCodeValue } from './exit-codes';
export {
  type BuildOptions,
  type ParseContext,
  parseBuildOptions,
  type RawBuildFlags,
  type SecretSource,
} from './options';
export { type OutputSpec, parseOutput, splitCsv } from './output-spec';
export { type BuildIO, type BuildOutcome, runBuild } from './run';
export { BuildUsageError } from './usage-error';
