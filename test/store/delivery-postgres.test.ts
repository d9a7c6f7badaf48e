import { postgresBackend } from './backends.ts';
import { deliveryStoreConformance } from './conformance-delivery.ts';

deliveryStoreConformance(await postgresBackend());
