/** `keyfleet smime …` — IMPLEMENTATION PENDING. */
import { KeyfleetError } from '../errors.ts';

export async function smimeCommand(_argv: string[]): Promise<number> {
  throw new KeyfleetError('KF_USAGE', 'keyfleet smime is not implemented yet');
}
