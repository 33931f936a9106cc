/**
 * The dashboard imports only types from the server's schemas (src/http/schemas.ts), and one of the files
 * behind them names Node's Buffer in a signature; this stands in for it, so the UI is checked without Node.
 */
type Buffer = Uint8Array;
