/**
 * The version this connector states in every request. It is numbered like
 * Intune's PFX Certificate Connector (6.YYMM.build.revision), whose versions
 * the seed's minimum ("6.1911.11.0 or later") and the server's
 * --min-connector-version are written in.
 */
export const CONNECTOR_VERSION = '6.2601.1.0';
