// The venue's clock in ns since the Unix epoch: the wall clock at start, advanced by the
// monotonic clock (ns resolution, never backwards), or a simulated time while the venue plays the
// market's history before it opens.

const startedWallNs = BigInt(Date.now()) * 1_000_000n;
const startedMonoNs = process.hrtime.bigint();

export function wallNs(): bigint {
  return startedWallNs + (process.hrtime.bigint() - startedMonoNs);
}

export class VenueClock {
  simulatedNs: bigint | null = null;

  now = (): bigint => this.simulatedNs ?? wallNs();
}
