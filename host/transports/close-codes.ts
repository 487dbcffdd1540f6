/**
 * WebSocket close codes the host uses, with our stable error code as the close reason (docs/protocol.md §4).
 * RFC 6455 §7.4: 1001 going away, 1003 unsupported data, 1008 policy violation, 1009 message too big,
 * 1011 internal error, 1013 try again later.
 */
import type { EkmsError } from '../../shared/errors.js';

export function wsCloseCodeFor(code: EkmsError['code']): number {
  switch (code) {
    case 'ENCLAVE_UNAVAILABLE':
    case 'HOST_OVERLOADED':
    case 'TOO_MANY_IN_FLIGHT':
      return 1013;
    case 'HOST_SHUTTING_DOWN':
      return 1001;
    case 'FRAME_TOO_LARGE':
      return 1009;
    case 'MESSAGE_INVALID':
      return 1003;
    default:
      return 1011;
  }
}
