/**
 * Fills the unused rest of Node's current Buffer pool slab with one byte value, so that the next pooled allocations
 * (shared/bytes.ts) start out holding it: a function that leaves any pooled byte unwritten then shows the dirt in its
 * output. Run the code under test after `dirtyPool(0xaa)` and again after `dirtyPool(0x55)`: the outputs must be equal.
 */
export function dirtyPool(byte: number): void {
  const probe = Buffer.allocUnsafe(1);
  new Uint8Array(probe.buffer).fill(byte, probe.byteOffset + 1);
}
