// One referral through the TypeScript SDK: create a program and its key, enrol a referrer,
// track a friend's signup (with the referrer's code) and first purchase, wait for the
// referrer's reward, and catch a typed problem. Against `make dev`, after `make sdk`:
//
//   cd sdk/typescript && ADMIN_API_KEY=$(cat ../../.dev/admin_api_key) npx tsx example.ts
//
// Base URLs: LINKS_URL, ATTRIBUTION_URL, REWARDS_URL, NOTIFICATIONS_URL (default `make dev`'s
// ports).
import { randomUUID } from "node:crypto";
import { createPlatform, localUrls, ok, type ServiceUrls, ValidationError } from "./src/index";

/** Events take a moment to flow between the services: poll with a deadline. */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutS = 60) {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const result = await probe();
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutS}s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main(): Promise<void> {
  const defaults = localUrls();
  const urls: ServiceUrls = {
    links: process.env.LINKS_URL ?? defaults.links,
    attribution: process.env.ATTRIBUTION_URL ?? defaults.attribution,
    rewards: process.env.REWARDS_URL ?? defaults.rewards,
    notifications: process.env.NOTIFICATIONS_URL ?? defaults.notifications,
  };
  const adminKey = process.env.ADMIN_API_KEY;
  if (!adminKey) throw new Error("set ADMIN_API_KEY (make dev writes it to .dev/admin_api_key)");
  const admin = createPlatform(urls, adminKey);

  const program = await ok(
    admin.links.POST("/v1/programs", {
      body: {
        name: "Give $20, get $20 (TypeScript SDK)",
        definition: {
          destination_url: "https://shop.example.com/welcome",
          allowed_hosts: ["shop.example.com"],
          rewards: {
            referrer: { amount: 2000, unit: "USD" },
            referee: { amount: 2000, unit: "USD" },
          },
        },
      },
    }),
  );
  console.log(`program ${program.id} version ${program.version}`);
  const key = await ok(
    admin.links.POST("/v1/programs/{program_id}/keys", {
      params: { path: { program_id: program.id } },
    }),
  );
  const server = createPlatform(urls, key.secret_key); // the program's server, with its own key

  const referrer = await ok(
    server.links.POST("/v1/programs/{program_id}/participants", {
      params: { path: { program_id: program.id } },
      body: { external_user_id: `user-${randomUUID().slice(0, 8)}` },
    }),
  );
  console.log(`participant ${referrer.id} code ${referrer.code} link ${referrer.link_url}`);

  const friend = `cust-${randomUUID().slice(0, 8)}`;
  const first = await ok(
    server.attribution.POST("/v1/signups", {
      body: { customer_id: friend, referral_code: referrer.code },
    }),
  );
  // Pending while attribution has not yet heard of the code (the enrolment's event).
  const decision =
    first.status !== "pending"
      ? first
      : await eventually(async () => {
          const answer = await ok(
            server.attribution.GET("/v1/signups/{signup_id}", {
              params: { path: { signup_id: first.signup_id } },
            }),
          );
          return answer.status !== "pending" ? answer : undefined;
        }, "signup decided");
  console.log(`signup ${friend}: attributed=${decision.attributed} (${decision.reason})`);

  const orderId = `order-${randomUUID().slice(0, 8)}`;
  const bought = await ok(
    server.attribution.POST("/v1/conversions", {
      // The order id as the key: a retried call is applied once.
      params: { header: { "Idempotency-Key": orderId } },
      body: { customer_id: friend, order_id: orderId, amount: 4999, currency: "USD" },
    }),
  );
  // Held (202) if the signup were still pending; it is decided here, so this is the conversion.
  if (!("conversion_id" in bought)) throw new Error(`conversion held: ${bought.status}`);
  console.log(`conversion ${bought.conversion_id} qualified=${bought.qualified}`);
  const again = await ok(
    server.attribution.POST("/v1/conversions", {
      params: { header: { "Idempotency-Key": orderId } },
      body: { customer_id: friend, order_id: orderId, amount: 4999, currency: "USD" },
    }),
  );
  if (!("conversion_id" in again) || again.conversion_id !== bought.conversion_id) {
    throw new Error(`the repeated call was applied again: ${JSON.stringify(again)}`);
  }
  console.log("repeated with the same Idempotency-Key: the first answer, applied once");

  const balance = await eventually(async () => {
    const answer = await ok(
      server.rewards.GET("/v1/programs/{program_id}/participants/{participant_id}/rewards", {
        params: { path: { program_id: program.id, participant_id: referrer.id } },
      }),
    );
    return answer.rewards.some((reward) => reward.status === "issued") ? answer : undefined;
  }, "referrer reward issued");
  console.log(`reward issued: balance ${JSON.stringify(balance.balances)}`);

  try {
    await ok(
      server.attribution.POST("/v1/conversions", {
        body: { customer_id: friend, order_id: "bad", amount: -1, currency: "USD" },
      }),
    );
    throw new Error("a negative amount was accepted");
  } catch (problem) {
    if (!(problem instanceof ValidationError)) throw problem;
    const field = problem.errors[0]?.field ?? problem.field;
    console.log(
      `typed problem: ${problem.name} ${problem.status} ${problem.kind} field=${field}`,
    );
  }
  console.log("example complete");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
