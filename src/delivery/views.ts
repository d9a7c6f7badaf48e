/**
 * Devices and their certificate states as JSON, in Microsoft Graph's names
 * (managedDevice, managedDeviceCertificateState): what the admin API
 * returns and the audit log records. The identity certificate itself is
 * left out; its thumbprint identifies it.
 */
import type { JsonValue } from '../store/audit.ts';
import type { DeviceCertificateRecord, ManagedDeviceRecord } from '../store/devices.ts';

export interface DeviceView {
  [key: string]: JsonValue;
  id: string;
  userId: string;
  deviceName: string;
  operatingSystem: string;
  osVersion: string;
  model: string;
  serialNumber: string | null;
  managementState: string;
  enrolledDateTime: string;
  lastSyncDateTime: string | null;
  identityCertificateThumbprint: string | null;
}

export function deviceView(d: ManagedDeviceRecord): DeviceView {
  return {
    id: d.id,
    userId: d.userId,
    deviceName: d.deviceName,
    operatingSystem: d.operatingSystem,
    osVersion: d.osVersion,
    model: d.model,
    serialNumber: d.serialNumber ?? null,
    managementState: d.managementState,
    enrolledDateTime: d.enrolledAt.toISOString(),
    lastSyncDateTime: d.lastSyncAt?.toISOString() ?? null,
    identityCertificateThumbprint: d.identityThumbprint ?? null,
  };
}

export function certificateStateView(c: DeviceCertificateRecord): { [key: string]: JsonValue } {
  return {
    id: c.id,
    deviceId: c.deviceId,
    certificateProfileId: c.profileId,
    source: c.source,
    userPfxCertificateId: c.pfxId ?? null,
    certificateIssuanceState: c.state,
    certificateThumbprint: c.thumbprint ?? null,
    certificateSerialNumber: c.serialNumber ?? null,
    certificateIssuer: c.issuer ?? null,
    certificateSubject: c.subject ?? null,
    certificateExpirationDateTime: c.expiresAt?.toISOString() ?? null,
    certificateErrorCode: c.errorCode ?? null,
    lastCertificateStateChangeDateTime: c.stateChangedAt.toISOString(),
  };
}
