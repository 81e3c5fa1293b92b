// Typed access to the StudioX REST API. `schema.d.ts` is generated from docs/openapi.json
// (`make gen`); never edit it by hand.
import createClient, { type Client } from "openapi-fetch";
import type { components, operations, paths } from "./schema.d.ts";

export type { components, operations, paths };

/** Every error the API answers: `{ error, statusCode }`. */
export type ApiError = components["schemas"]["Error"];
export type User = components["schemas"]["User"];
export type Credits = components["schemas"]["Credits"];
export type Transaction = components["schemas"]["LedgerEntry"];
export type TransactionType = Transaction["type"];
export type Task = components["schemas"]["Task"];
export type TaskType = Task["type"];
export type TaskStatus = Task["status"];
export type Plan = components["schemas"]["Plan"];
export type CreditPack = components["schemas"]["CreditPack"];
export type Payment = components["schemas"]["Payment"];

export type StudioXClient = Client<paths>;

/**
 * A client for the gateway at `baseUrl` (e.g. "http://localhost:3000"). `getToken` returns the
 * Clerk session token (e.g. `() => session.getToken()`); routes that need none ignore it.
 */
export function createStudioXClient(
  baseUrl: string,
  getToken: () => Promise<string | null>,
): StudioXClient {
  const client = createClient<paths>({ baseUrl });
  client.use({
    async onRequest({ request }) {
      const token = await getToken();
      if (token) {
        request.headers.set("Authorization", `Bearer ${token}`);
      }
      return request;
    },
  });
  return client;
}
