export const packageName = '@ktl/buildkit-client';
