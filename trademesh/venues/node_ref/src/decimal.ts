// Exact decimals for money, prices and sizes: a bigint coefficient and a count of decimal places.
//
// The wire form is plain: an optional minus, ASCII digits, an optional fraction ("65000.50"); no
// exponent, spaces or underscores, at most 38 significant digits (the Python venues' rule,
// trademesh/core/domain/decimals.py). Sums, differences and products are exact; the one quotient the
// venue takes (an average fill price) is exact when it terminates, else rounded half-even to 18
// places, as the Python venues report it. No float ever holds an amount.

export const MAX_DIGITS = 38;
const PLAIN = /^-?[0-9]+(\.[0-9]+)?$/;
const MAX_TEXT = 2 * MAX_DIGITS + 2;
// Quotients that do not terminate are reported to this many places.
const REPORT_PLACES = 18;

export class Dec {
  private constructor(
    readonly coefficient: bigint,
    readonly places: number,
  ) {}

  static readonly ZERO = new Dec(0n, 0);
  static readonly ONE = new Dec(1n, 0);

  static of(coefficient: bigint, places = 0): Dec {
    return new Dec(coefficient, places).trimmed();
  }

  static int(value: bigint | number): Dec {
    return new Dec(BigInt(value), 0);
  }

  // A wire decimal; null when the text is not one (the caller says why, naming its field).
  static parse(text: string): Dec | null {
    if (text.length > MAX_TEXT || !PLAIN.test(text)) {
      return null;
    }
    const negative = text.startsWith("-");
    const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
    const coefficient = BigInt(whole + fraction);
    return new Dec(negative ? -coefficient : coefficient, fraction.length).trimmed();
  }

  // Significant digits of a wire decimal as Python's Decimal counts them (trailing zeros of the
  // fraction included, leading zeros not).
  static significantDigits(text: string): number {
    const digits = text.replace("-", "").replace(".", "").replace(/^0+/, "");
    return Math.max(digits.length, 1);
  }

  get sign(): number {
    return this.coefficient === 0n ? 0 : this.coefficient > 0n ? 1 : -1;
  }

  isZero(): boolean {
    return this.coefficient === 0n;
  }

  add(other: Dec): Dec {
    const [a, b, places] = align(this, other);
    return new Dec(a + b, places).trimmed();
  }

  sub(other: Dec): Dec {
    const [a, b, places] = align(this, other);
    return new Dec(a - b, places).trimmed();
  }

  mul(other: Dec): Dec {
    return new Dec(this.coefficient * other.coefficient, this.places + other.places).trimmed();
  }

  neg(): Dec {
    return new Dec(-this.coefficient, this.places);
  }

  abs(): Dec {
    return this.coefficient < 0n ? this.neg() : this;
  }

  cmp(other: Dec): number {
    const [a, b] = align(this, other);
    return a === b ? 0 : a < b ? -1 : 1;
  }

  eq(other: Dec): boolean {
    return this.cmp(other) === 0;
  }

  lt(other: Dec): boolean {
    return this.cmp(other) < 0;
  }

  lte(other: Dec): boolean {
    return this.cmp(other) <= 0;
  }

  gt(other: Dec): boolean {
    return this.cmp(other) > 0;
  }

  gte(other: Dec): boolean {
    return this.cmp(other) >= 0;
  }

  static min(a: Dec, b: Dec): Dec {
    return a.lte(b) ? a : b;
  }

  static max(a: Dec, b: Dec): Dec {
    return a.gte(b) ? a : b;
  }

  // Whether this is a whole number of `step`s (a zero step divides everything, as in Python).
  isMultipleOf(step: Dec): boolean {
    if (step.isZero()) {
      return true;
    }
    const [a, b] = align(this, step);
    return a % b === 0n;
  }

  // How many `step`s this is; the caller checked isMultipleOf.
  unitsOf(step: Dec): bigint {
    const [a, b] = align(this, step);
    return a / b;
  }

  // this / divisor: exact when the quotient terminates, else rounded half-even to 18 places.
  div(divisor: Dec): Dec {
    if (divisor.isZero()) {
      throw new RangeError("division by zero");
    }
    // this / divisor = (a * 10^q) / (b * 10^p), a and b the coefficients, p and q their places.
    let numerator = this.coefficient * 10n ** BigInt(divisor.places);
    let denominator = divisor.coefficient * 10n ** BigInt(this.places);
    if (denominator < 0n) {
      numerator = -numerator;
      denominator = -denominator;
    }
    const places = terminatingPlaces(numerator, denominator);
    if (places !== null) {
      return new Dec((numerator * 10n ** BigInt(places)) / denominator, places).trimmed();
    }
    return new Dec(roundHalfEven(numerator * 10n ** BigInt(REPORT_PLACES), denominator), REPORT_PLACES);
  }

  // Rounded towards minus infinity to whole units of `step` (a price band's bound).
  floorTo(step: Dec): bigint {
    const [a, b] = align(this, step);
    const q = a / b;
    return a % b !== 0n && a < 0n ? q - 1n : q;
  }

  ceilTo(step: Dec): bigint {
    const [a, b] = align(this, step);
    const q = a / b;
    return a % b !== 0n && a > 0n ? q + 1n : q;
  }

  // Plain notation without trailing zeros: "1500", "0.5", "-3.25", "0".
  toString(): string {
    if (this.coefficient === 0n) {
      return "0";
    }
    const negative = this.coefficient < 0n;
    const digits = (negative ? -this.coefficient : this.coefficient).toString();
    let text: string;
    if (this.places === 0) {
      text = digits;
    } else if (digits.length > this.places) {
      text = `${digits.slice(0, digits.length - this.places)}.${digits.slice(digits.length - this.places)}`;
    } else {
      text = `0.${digits.padStart(this.places, "0")}`;
    }
    return negative ? `-${text}` : text;
  }

  private trimmed(): Dec {
    let { coefficient, places } = this;
    if (coefficient === 0n) {
      return places === 0 ? this : new Dec(0n, 0);
    }
    while (places > 0 && coefficient % 10n === 0n) {
      coefficient /= 10n;
      places -= 1;
    }
    // Whole numbers keep no negative places: 1500 stays (1500, 0).
    return places === this.places ? this : new Dec(coefficient, places);
  }
}

// A decimal read from the code's own constants (never from a request).
export function dec(text: string): Dec {
  const value = Dec.parse(text);
  if (value === null) {
    throw new RangeError(`not a decimal: ${text}`);
  }
  return value;
}

// An optional decimal on the wire: its text, or "" when absent.
export function optional(value: Dec | null): string {
  return value === null ? "" : value.toString();
}

function align(a: Dec, b: Dec): [bigint, bigint, number] {
  if (a.places === b.places) {
    return [a.coefficient, b.coefficient, a.places];
  }
  if (a.places > b.places) {
    return [a.coefficient, b.coefficient * 10n ** BigInt(a.places - b.places), a.places];
  }
  return [a.coefficient * 10n ** BigInt(b.places - a.places), b.coefficient, b.places];
}

// The places after which numerator / denominator ends (denominator > 0); null when it never does.
function terminatingPlaces(numerator: bigint, denominator: bigint): number | null {
  const common = gcd(numerator < 0n ? -numerator : numerator, denominator);
  let rest = denominator / common;
  let twos = 0;
  let fives = 0;
  while (rest % 2n === 0n) {
    rest /= 2n;
    twos += 1;
  }
  while (rest % 5n === 0n) {
    rest /= 5n;
    fives += 1;
  }
  return rest === 1n ? Math.max(twos, fives) : null;
}

function roundHalfEven(numerator: bigint, denominator: bigint): bigint {
  const negative = numerator < 0n;
  const n = negative ? -numerator : numerator;
  let q = n / denominator;
  const twice = (n % denominator) * 2n;
  if (twice > denominator || (twice === denominator && q % 2n === 1n)) {
    q += 1n;
  }
  return negative ? -q : q;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) {
    [a, b] = [b, a % b];
  }
  return a === 0n ? 1n : a;
}
