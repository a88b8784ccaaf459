export const packageName = '@ktl/sandbox-runner';
