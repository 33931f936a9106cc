/** An operation that ends in failure for a reason it states (not a bug): its message is the operation's. */
export class OperationFailed extends Error {}
