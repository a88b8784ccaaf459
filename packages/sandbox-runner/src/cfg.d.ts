// Policy files imported as text: tsup's text loader in the build, scripts/jest-text-transform.js
// in tests.
declare module '*.cfg' {
  const text: string;
  export default text;
}
