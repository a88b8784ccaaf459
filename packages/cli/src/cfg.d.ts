declare module '*.cfg' {
  const text: string;
  export default text;
}
