// The venues the gateway knows: the registry's live instances of kind VENUE, sorted by name.
import { type Instance, Kind } from "../gen/trademesh/registry/v1/registry_pb";
import { type Clients, unary } from "./clients";

export async function listVenues(clients: Clients, signal: AbortSignal): Promise<Instance[]> {
  const reply = await clients.registry.listServices({ kind: Kind.VENUE }, unary(signal));
  return reply.instances;
}
