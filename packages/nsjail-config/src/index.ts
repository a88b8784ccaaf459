export const packageName = '@ktl/nsjail-config';
