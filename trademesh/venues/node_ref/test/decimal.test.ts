// Exact decimals: the wire form, arithmetic without rounding, the one quotient's rounding.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Dec, dec } from "../src/decimal.js";

test("wire decimals parse and print in plain form without trailing zeros", () => {
  assert.equal(dec("65000.50").toString(), "65000.5");
  assert.equal(dec("-0.000100").toString(), "-0.0001");
  assert.equal(dec("1500").toString(), "1500");
  assert.equal(dec("0.000").toString(), "0");
  for (const bad of ["1e5", " 1", "1.", ".5", "+1", "1_000", "", "NaN"]) {
    assert.equal(Dec.parse(bad), null, bad);
  }
});

test("sums and products are exact where floats are not", () => {
  assert.equal(dec("0.1").add(dec("0.2")).toString(), "0.3");
  assert.equal(dec("64995.89").mul(dec("0.00001")).mul(dec("0.002")).toString(), "0.0012999178");
  assert.equal(dec("1000000").sub(dec("0.000000001")).toString(), "999999.999999999");
});

test("a quotient is exact when it terminates, else rounded half-even to 18 places", () => {
  assert.equal(dec("1").div(dec("8")).toString(), "0.125");
  assert.equal(dec("2").div(dec("3")).toString(), "0.666666666666666667");
  assert.equal(dec("1").div(dec("3")).toString(), "0.333333333333333333");
  assert.equal(dec("-1").div(dec("3")).toString(), "-0.333333333333333333");
});

test("multiples of a step, and units of it", () => {
  assert.ok(dec("65000.01").isMultipleOf(dec("0.01")));
  assert.ok(!dec("65000.001").isMultipleOf(dec("0.01")));
  assert.equal(dec("0.00123").unitsOf(dec("0.00001")), 123n);
  assert.equal(Dec.significantDigits("000123.4500"), 7);
  assert.equal(Dec.significantDigits("0.0001"), 1);
});
