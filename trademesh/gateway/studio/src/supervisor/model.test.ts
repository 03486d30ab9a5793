// supervisor/model: what a proposal asks for and its evidence, as the Supervisor page reads them.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { ActionKind, EvidenceSchema, ProposalSchema } from "../gen/trademesh/supervisor/v1/supervisor_pb";
import { evidenceText, valueText } from "./model";

const capital = create(ProposalSchema, { kind: ActionKind.SET_CAPITAL, strategy: "trend", value: "7290.0000000000" });
const tighten = (policy: string, value: string) =>
  create(ProposalSchema, { kind: ActionKind.TIGHTEN_POLICY, policy, value });
const evidence = (name: string, value: string) => create(EvidenceSchema, { name, value });

describe("valueText", () => {
  test("a capital to the cent", () => {
    expect(valueText(capital)).toBe("7,290.00");
  });

  test("a policy's new limit as the Risk page shows that policy's", () => {
    expect(valueText(tighten("exposure.max_gross", "25000.123456789"))).toBe("25,000.12");
    expect(valueText(tighten("loss.max_drawdown", "0.04"))).toBe("4.00%");
    expect(valueText(tighten("position.max_size", "0.015"))).toBe("0.015");
  });

  test("none is a dash", () => {
    expect(valueText(create(ProposalSchema, { kind: ActionKind.PAUSE, strategy: "trend" }))).toBe("–");
  });
});

describe("evidenceText", () => {
  test("money to the cent, fractions as percentages, counts as sent", () => {
    expect(evidenceText(evidence("realised_pnl", "-12.345678901234"), capital)).toBe("realised pnl: -12.35");
    expect(evidenceText(evidence("capital", "8100"), capital)).toBe("capital: 8,100.00");
    expect(evidenceText(evidence("drawdown", "0.0421"), capital)).toBe("drawdown: 4.21%");
    expect(evidenceText(evidence("round_trips", "12"), capital)).toBe("round trips: 12");
    expect(evidenceText(evidence("hit_rate", ""), capital)).toBe("hit rate: –");
  });

  test("a tightening's limit and floor as its policy's", () => {
    const proposal = tighten("exposure.max_gross", "20000");
    expect(evidenceText(evidence("limit", "25000.5"), proposal)).toBe("limit: 25,000.50");
    expect(evidenceText(evidence("floor", "10000"), proposal)).toBe("floor: 10,000.00");
  });
});
