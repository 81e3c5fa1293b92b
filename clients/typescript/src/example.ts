// The README's usage example, type-checked by `make check` so it cannot rot.
import { createStudioXClient, type Task } from "./index.ts";

export async function runExample(getToken: () => Promise<string | null>): Promise<Task | null> {
  const api = createStudioXClient("http://localhost:3000", getToken);

  const { data: me } = await api.GET("/api/users/me");
  if (me) {
    console.log(`${me.user.email} on ${me.user.plan.name}: ${me.user.currentCredits} credits`);
  }

  const created = await api.POST("/api/tasks/create", {
    body: { type: "video_generation", inputData: { prompt: "a sunset over the sea" } },
    params: { header: { "Idempotency-Key": crypto.randomUUID() } },
  });
  if (created.error) {
    // Typed per status: 402 when credits are short, 403 when the plan lacks the feature, ...
    console.warn(`${created.error.statusCode}: ${created.error.error}`);
    return null;
  }

  const { data: page } = await api.GET("/api/users/transactions", {
    params: { query: { limit: 10 } },
  });
  for (const tx of page?.transactions ?? []) {
    console.log(tx.type, tx.amount, tx.createdAt); // tx.type: "credit_use" | "refund" | ...
  }
  return created.data.task;
}
