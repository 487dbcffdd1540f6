/** How a promise settled, for tests that expect a typed failure (shared so that every test reads it the same way). */
import { EkmsError } from '../../shared/errors.js';

/** The code of the EkmsError `p` rejects with, or 'OK' when it resolves; any other rejection is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EkmsError) return err.code;
    throw err;
  }
  return 'OK';
}

/** The EkmsError `p` rejects with; a resolution fails the test, any other rejection is rethrown. */
export async function failure(p: Promise<unknown>): Promise<EkmsError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EkmsError) return err;
    throw err;
  }
  throw new Error('the operation succeeded; a failure was expected');
}
