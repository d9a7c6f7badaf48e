/**
 * The mail app of the seed (Outlook for iOS) on one account: composes,
 * signs and encrypts new messages as its managed settings say, opens
 * received ones, finds recipients' certificates, and installs certificates
 * from signed messages and attachments. The key material is read afresh
 * for every operation, because the Company Portal agent may have changed
 * the keystore meanwhile (new certificates, a retired device).
 */
import { KeyfleetError } from '../errors.ts';
import { type Certificate, loadCertificates } from '../x509/certificate.ts';
import { decodeSignedData } from '../smime/cms/signed-data.ts';
import { encryptMessage, signMessage } from '../smime/message.ts';
import { decodePemAll, looksLikePem } from '../asn1/pem.ts';
import type { PathReason } from '../x509/path.ts';
import { type MessageDraft, buildMessage, mailboxAddress, recipientAddresses } from './compose.ts';
import { type RecipientLookup, expiresSoon, findRecipientCertificates, isCa, knownCertificates, ownEncryptionKeyFor, signingIdentityFor, validateFor } from './certificates.ts';
import { RecipientCertificatesMissing, certificateUnavailable } from './errors.ts';
import type { CertificateDirectory, ContactBook, ContactSource, MailKeys } from './keys.ts';
import { type OpenOptions, type OpenedMessage, openMessage, signerCertificates } from './open.ts';
import { type OutlookSmimeSettings, type ProtectionChoice, type SmimePreferences, applyPreferences, decideProtection, readOutlookSettings } from './settings.ts';

export interface MailClientOptions {
  /** The account's primary SMTP address: its signing certificate must name it. */
  readonly account: string;
  /** "Name <address>" for From; default the bare account address. */
  readonly from?: string;
  /** The device's key material, one consistent version per call (a keystore snapshot). */
  readonly keys: () => MailKeys | Promise<MailKeys>;
  /** Where installed certificates are kept; without one, install is refused. */
  readonly contactBook?: ContactBook;
  /** Asked in order after the device's contacts (GAL, LDAP, the service). */
  readonly directories?: readonly CertificateDirectory[];
  /** The user's own S/MIME settings for the account. */
  readonly preferences?: SmimePreferences;
  readonly clock?: () => Date;
}

export interface ComposedMessage {
  /** RFC 5322 text, ready to send. */
  readonly message: Uint8Array;
  readonly signed: boolean;
  readonly encrypted: boolean;
  readonly signer: { readonly thumbprint: string; readonly notAfter: Date } | undefined;
  /** Each recipient and the certificate it was encrypted to (the sender's own copy included). */
  readonly encryptedTo: readonly { readonly address: string; readonly thumbprint: string; readonly source: string }[];
  /** e.g. "signing certificate expires in 12 days" (Outlook warns 30 days ahead). */
  readonly warnings: readonly string[];
}

export interface InstallResult {
  readonly installed: readonly Certificate[];
  readonly alreadyKnown: readonly Certificate[];
  readonly rejected: readonly { readonly certificate: Certificate; readonly reasons: readonly PathReason[] }[];
}

/** Attachment types Outlook offers to install certificates from (without keys: .pfx/.p12 are the device's business). */
const CERTIFICATE_FILES = /\.(cer|crt|der|pem|p7c|p7b)$/i;

export class MailClient {
  readonly account: string;
  readonly #options: MailClientOptions;

  constructor(options: MailClientOptions) {
    this.account = mailboxAddress(options.account);
    this.#options = options;
  }

  #now(): Date {
    return this.#options.clock?.() ?? new Date();
  }

  /** The account's S/MIME settings: the managed configuration with the user's own choices applied where allowed. */
  async settings(): Promise<OutlookSmimeSettings> {
    const keys = await this.#options.keys();
    return applyPreferences(readOutlookSettings(keys.managedSettings()), this.#options.preferences);
  }

  /**
   * Builds the message and protects it: signed and/or encrypted as the
   * settings default to, or as `choice` asks where the settings allow.
   * Signing needs a valid signing certificate for the account; encryption
   * needs one for every recipient (RecipientCertificatesMissing names those
   * without) and includes the sender's own certificate so that the sent copy
   * stays readable.
   */
  async compose(draft: MessageDraft, choice: ProtectionChoice = {}): Promise<ComposedMessage> {
    const keys = await this.#options.keys();
    const now = this.#now();
    const settings = applyPreferences(readOutlookSettings(keys.managedSettings()), this.#options.preferences);
    const protection = decideProtection(settings, choice);
    if (draft.from !== undefined && mailboxAddress(draft.from) !== this.account && (protection.sign || protection.encrypt)) {
      throw certificateUnavailable(`S/MIME is available only from the account's address ${this.account}`, 'sender-not-account');
    }
    let message = buildMessage(draft, { from: this.#options.from ?? this.account, now });
    const warnings: string[] = [];
    const own = ownEncryptionKeyFor(this.account, keys, now);

    let lookup: RecipientLookup | undefined;
    if (protection.encrypt) {
      lookup = await findRecipientCertificates(recipientAddresses(draft), keys, this.#options.directories ?? [], now);
      if (lookup.missing.length > 0) throw new RecipientCertificatesMissing(lookup.missing);
    }

    let signer: ComposedMessage['signer'];
    if (protection.sign) {
      const id = signingIdentityFor(this.account, keys, now);
      if (!id) throw certificateUnavailable(`no valid signing certificate for ${this.account} is available on this device`, 'signing-certificate-missing');
      const days = expiresSoon(id.certificate, now);
      if (days !== undefined) warnings.push(`signing certificate expires in ${days} days`);
      // Sending one's encryption certificate along lets the recipient encrypt back (RFC 8551 §2.5.3).
      const extra = own && own.certificate.thumbprint !== id.certificate.thumbprint ? [own.certificate] : [];
      message = signMessage(message, {
        signers: [{ certificate: id.certificate, key: id.key, chain: [...id.chain, ...extra], ...(own ? { encryptionCertificate: own.certificate } : {}) }],
      });
      signer = { thumbprint: id.certificate.thumbprint, notAfter: id.certificate.notAfter };
    }

    const encryptedTo: { address: string; thumbprint: string; source: string }[] = [];
    if (lookup) {
      for (const [address, hit] of lookup.found) encryptedTo.push({ address, thumbprint: hit.certificate.thumbprint, source: hit.source });
      if (own && !encryptedTo.some((r) => r.thumbprint === own.certificate.thumbprint)) encryptedTo.push({ address: this.account, thumbprint: own.certificate.thumbprint, source: 'own' });
      else if (!own) warnings.push('no encryption certificate of your own: the sent copy cannot be read on this device');
      const certificates = [...lookup.found.values()].map((h) => h.certificate);
      if (own) certificates.push(own.certificate);
      const unique = [...new Map(certificates.map((c) => [c.thumbprint, c])).values()];
      message = encryptMessage(message, unique.map((certificate) => ({ certificate })));
    }
    return { message, signed: protection.sign, encrypted: protection.encrypt, signer, encryptedTo, warnings };
  }

  /** Decrypts (with any key of the history) and verifies (against the trusted roots) a received message. */
  async open(message: Uint8Array, options: OpenOptions = {}): Promise<OpenedMessage> {
    const keys = await this.#options.keys();
    return openMessage(message, keys, options.at ? options : { at: this.#now() });
  }

  /** Each address's encryption certificate, from contacts, then the directories. */
  async findCertificates(addresses: readonly string[]): Promise<RecipientLookup> {
    return findRecipientCertificates(addresses.map(mailboxAddress), await this.#options.keys(), this.#options.directories ?? [], this.#now());
  }

  /**
   * Installs the signer's certificates from a received signed message (its
   * own, the encryption certificate it sends along, and the CAs on its
   * path). Only a signature that verifies is trusted to say whose they are.
   */
  async installFromMessage(message: Uint8Array): Promise<InstallResult> {
    const opened = await this.open(message);
    if (!opened.signed) throw certificateUnavailable('the message is not signed: it carries no certificates to install', 'not-signed');
    if (!opened.signature?.valid) {
      const reasons = [...new Set(opened.signature?.signers.flatMap((s) => s.reasons) ?? [])].join(', ');
      throw certificateUnavailable(`the signature does not verify (${reasons}); its certificates are not installed`, 'signature-invalid');
    }
    return this.#install(signerCertificates(opened), 'signed-message');
  }

  /** Installs the certificates of a .cer/.crt/.der/.pem or .p7c/.p7b attachment that validate to a trusted root. */
  async installAttachment(content: Uint8Array, fileName: string): Promise<InstallResult> {
    if (!CERTIFICATE_FILES.test(fileName)) throw new KeyfleetError('KF_USAGE', `${fileName} is not a certificate file (.cer, .crt, .der, .pem, .p7c, .p7b)`);
    return this.#install(certificatesOfFile(content), 'attachment');
  }

  async #install(certificates: readonly Certificate[], source: ContactSource): Promise<InstallResult> {
    const book = this.#options.contactBook;
    if (!book) throw new KeyfleetError('KF_USAGE', 'this mail client has no contact book to install certificates into');
    const keys = await this.#options.keys();
    const now = this.#now();
    const pool = [...certificates, ...knownCertificates(keys)];
    const offered = new Set(certificates.map((c) => c.thumbprint));
    const accepted = new Map<string, Certificate>();
    const rejected: { certificate: Certificate; reasons: readonly PathReason[] }[] = [];
    // End-entity certificates are judged on their own path; a CA certificate is kept only as a step of such a path.
    for (const c of certificates) {
      if (isCa(c)) continue;
      const path = validateFor(c, 'any', keys, pool, now);
      if (path.reasons.length > 0) {
        rejected.push({ certificate: c, reasons: path.reasons });
        continue;
      }
      for (const step of path.chain.slice(0, -1)) if (offered.has(step.certificate.thumbprint)) accepted.set(step.certificate.thumbprint, step.certificate);
    }
    if (accepted.size === 0) {
      const why = [...new Set(rejected.flatMap((r) => r.reasons))].join(', ') || 'no certificates';
      throw certificateUnavailable(`nothing to install: no certificate validates to a trusted root (${why})`, 'untrusted');
    }
    const added = await book.addContacts([...accepted.values()], source);
    const addedSet = new Set(added.map((c) => c.thumbprint));
    return { installed: added, alreadyKnown: [...accepted.values()].filter((c) => !addedSet.has(c.thumbprint)), rejected };
  }
}

/** Certificates from a .cer/.crt (DER or PEM) or a .p7c/.p7b (certs-only SignedData, DER or PEM "PKCS7"). */
export function certificatesOfFile(content: Uint8Array): Certificate[] {
  if (looksLikePem(content)) {
    const blocks = decodePemAll(Buffer.from(content).toString('latin1'));
    const p7 = blocks.filter((b) => b.label === 'PKCS7' || b.label === 'CMS');
    if (p7.length > 0) return p7.flatMap((b) => decodeSignedData(b.der).certificates);
    return loadCertificates(content);
  }
  // DER: a Certificate and a ContentInfo are both SEQUENCEs; a certs-only SignedData starts with its OID.
  try {
    return decodeSignedData(content).certificates;
  } catch {
    return loadCertificates(content);
  }
}
