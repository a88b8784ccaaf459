// Jest transform for text assets (.cfg policies) imported by source files: the module's default
// export is the file's text, as tsup's text loader makes it in the built bundle.
export default {
  process(src) {
    return { code: `export default ${JSON.stringify(src)};` };
  },
};
