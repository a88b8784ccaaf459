/**
 * Build step only (dist/boot.cjs --write-code-cache), for the bundles that run a sandboxed
 * `ktl build` outside the jail (dist/build.cjs, dist/ktl.cjs): the sandbox's modules are loaded
 * on first use, so they are evaluated here and the start-up code is run once (warm.ts), to be
 * in the code cache compiled.
 */
export async function warmOuterBuild(): Promise<void> {
  const [{ warmSandboxStart }] = await Promise.all([
    import('./warm'),
    import('./reexec'),
    import('./handover'),
  ]);
  await warmSandboxStart();
}
