// Vitest setup file: fast-check asserts without an explicit numRuns use EKMS_PROPERTY_RUNS when it is set
// (test/helpers/property-runs.ts).
import fc from 'fast-check';
import { PROPERTY_RUNS_OVERRIDE } from './helpers/property-runs.js';

if (PROPERTY_RUNS_OVERRIDE !== undefined) fc.configureGlobal({ numRuns: PROPERTY_RUNS_OVERRIDE });
