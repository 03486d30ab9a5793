// Prices and sizes stay decimal strings (as on the wire): they are compared, validated and shown
// as text, and turned into JS numbers only to draw (chart coordinates, depth bars).

const DECIMAL = /^\d+(\.\d+)?$/;

/** True for a plain non-negative decimal such as "65000.5" (no sign, exponent or spaces). */
export function isDecimal(text: string): boolean {
  return DECIMAL.test(text);
}

/** True for a decimal above zero. */
export function isPositiveDecimal(text: string): boolean {
  return isDecimal(text) && /[1-9]/.test(text);
}

function parts(text: string): [boolean, string, string] {
  const negative = text.startsWith("-");
  const body = negative ? text.slice(1) : text;
  const [whole = "", fraction = ""] = body.split(".");
  return [negative, whole.replace(/^0+(?=\d)/, ""), fraction.replace(/0+$/, "")];
}

function compareMagnitude(a: [string, string], b: [string, string]): number {
  if (a[0].length !== b[0].length) return a[0].length < b[0].length ? -1 : 1;
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  const width = Math.max(a[1].length, b[1].length);
  const fa = a[1].padEnd(width, "0");
  const fb = b[1].padEnd(width, "0");
  return fa === fb ? 0 : fa < fb ? -1 : 1;
}

/** Exact order of two decimal strings (optionally signed): -1, 0 or 1. */
export function compareDecimal(a: string, b: string): number {
  const [na, wa, fa] = parts(a);
  const [nb, wb, fb] = parts(b);
  const zeroA = /^0*$/.test(wa + fa);
  const zeroB = /^0*$/.test(wb + fb);
  const signA = zeroA ? 0 : na ? -1 : 1;
  const signB = zeroB ? 0 : nb ? -1 : 1;
  if (signA !== signB) return signA < signB ? -1 : 1;
  const magnitude = compareMagnitude([wa, fa], [wb, fb]);
  return signA < 0 ? -magnitude : magnitude;
}

/** One spelling per value ("65000.50" and "65000.5" are one price): for map keys. */
export function canonical(text: string): string {
  const [negative, whole, fraction] = parts(text);
  const body = fraction === "" ? whole || "0" : `${whole || "0"}.${fraction}`;
  return negative && /[1-9]/.test(body) ? `-${body}` : body;
}

/** True when the decimal string is zero ("0", "0.000"). */
export function isZero(text: string): boolean {
  return compareDecimal(text, "0") === 0;
}

/** A number for drawing only (chart coordinates, bar widths); never for money arithmetic. */
export function forDrawing(text: string): number {
  return Number(text);
}

/** a - b, exact, for two plain decimals ("65010.5" - "65000.25" = "10.25"; may be negative). */
export function subtractDecimal(a: string, b: string): string {
  const scale = Math.max(a.split(".")[1]?.length ?? 0, b.split(".")[1]?.length ?? 0);
  const scaled = (text: string): bigint => {
    const [whole = "0", fraction = ""] = text.split(".");
    return BigInt(whole + fraction.padEnd(scale, "0"));
  };
  const difference = scaled(a) - scaled(b);
  const negative = difference < 0n;
  const digits = (negative ? -difference : difference).toString().padStart(scale + 1, "0");
  const body = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return canonical(negative ? `-${body}` : body);
}
