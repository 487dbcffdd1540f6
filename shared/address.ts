/**
 * Endpoint addresses between host and enclave (docs/transports.md).
 *
 *   unix:/absolute/or/relative/path.sock   a Unix domain socket (simulation, CI, and the inside end of a vsock bridge)
 *   vsock:CID:PORT                          an AF_VSOCK endpoint (Nitro: the parent is CID 3, an enclave gets its own CID)
 *
 * Pure parsing only; the processes open the sockets.
 */
import { ConfigError } from './errors.js';

export type EndpointAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'vsock'; readonly cid: number; readonly port: number };

const U32 = 0xffff_ffff;

/**
 * Parses `unix:PATH` or `vsock:CID:PORT`.
 * @throws ConfigError CONFIG_INVALID
 */
export function parseEndpointAddress(text: string): EndpointAddress {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    // Linux limits sun_path to 108 bytes including the terminating NUL.
    if (path.length === 0 || Buffer.byteLength(path) > 107 || path.includes('\0')) {
      throw new ConfigError('CONFIG_INVALID', `invalid unix socket path in "${text}" (1–107 bytes, no NUL)`);
    }
    return { kind: 'unix', path };
  }
  const m = /^vsock:(\d{1,10}):(\d{1,10})$/.exec(text);
  if (m) {
    const cid = Number(m[1]);
    const port = Number(m[2]);
    if (cid > U32 || port > U32)
      throw new ConfigError('CONFIG_INVALID', `vsock CID and port are 32-bit: "${text}"`);
    return { kind: 'vsock', cid, port };
  }
  throw new ConfigError('CONFIG_INVALID', `endpoint "${text}" is neither unix:PATH nor vsock:CID:PORT`);
}

export function formatEndpointAddress(a: EndpointAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : `vsock:${a.cid}:${a.port}`;
}

/**
 * The `socat` arguments that bridge a vsock endpoint to a Unix socket. Node has no AF_VSOCK support, so on a
 * real Nitro instance each side runs this bridge next to the process (docs/transports.md) and the Node code
 * path is the Unix-socket one that the tests exercise.
 *
 * - `listen` (enclave side): accept vsock connections on PORT, each forwarded to the enclave's Unix socket.
 * - `connect` (host side): accept Unix connections on PATH, each forwarded to the enclave's CID:PORT.
 */
export function vsockBridgeArgs(
  side: 'listen' | 'connect',
  vsock: { readonly cid: number; readonly port: number },
  unixPath: string,
): string[] {
  return side === 'listen'
    ? [`VSOCK-LISTEN:${vsock.port},fork,reuseaddr`, `UNIX-CONNECT:${unixPath}`]
    : [`UNIX-LISTEN:${unixPath},fork,unlink-early,mode=600`, `VSOCK-CONNECT:${vsock.cid}:${vsock.port}`];
}
