export { createPlatform, IDEMPOTENCY_HEADER, localUrls, ok } from "./platform";
export type { ReferralPlatform, ServiceUrls } from "./platform";
export {
  AuthError,
  ConflictError,
  NotFoundError,
  ProblemError,
  problemFrom,
  RateLimitError,
  TYPE_BASE,
  ValidationError,
} from "./problems";
export type { FieldProblem } from "./problems";
