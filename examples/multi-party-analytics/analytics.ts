/**
 * The joint computation of the analytics workload: pure functions over the decrypted CSVs, run only inside the
 * attested workload. Its output is aggregates only:
 * - how many patients were treated at all three hospitals, at exactly two, and in total (the overlap no single
 *   hospital can see);
 * - per diagnosis, over the pooled admissions: admissions, patients, mean length of stay, 30-day readmission rate
 *   and mean cost;
 * - the readmission rate of patients treated at several hospitals against those treated at one.
 * Groups with fewer than MIN_GROUP_PATIENTS distinct patients are suppressed (small-cell suppression), and the
 * result is checked to contain no patient or admission identifier before it leaves the workload.
 */
import { CSV_HEADER, DIAGNOSES, PARTIES, type Party } from './datasets.js';

/** Groups smaller than this (distinct patients) are reported as suppressed. */
export const MIN_GROUP_PATIENTS = 10;

export interface Admission {
  readonly patientId: string;
  readonly diagnosis: string;
  readonly lengthOfStay: number;
  readonly readmitted: boolean;
  readonly cost: number;
}

export class DatasetError extends Error {
  readonly code = 'DATASET_INVALID';
}

/**
 * Parses one hospital's CSV (the demo's fixed schema; no quoting needed: no field contains a comma).
 * @throws DatasetError DATASET_INVALID for a wrong header, a short line or a non-numeric field
 */
export function parseAdmissions(csv: string, source: string): Admission[] {
  const lines = csv.split('\n');
  if (lines[0] !== CSV_HEADER.join(',')) throw new DatasetError(`${source}: unexpected CSV header`);
  const out: Admission[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const f = line.split(',');
    if (f.length !== CSV_HEADER.length)
      throw new DatasetError(`${source}: line ${i + 1} has ${f.length} fields`);
    const stay = Number(f[7]);
    const cost = Number(f[9]);
    if (!Number.isFinite(stay) || !Number.isFinite(cost) || (f[8] !== '0' && f[8] !== '1')) {
      throw new DatasetError(`${source}: line ${i + 1} has a malformed number`);
    }
    out.push({
      patientId: f[1] as string,
      diagnosis: f[5] as string,
      lengthOfStay: stay,
      readmitted: f[8] === '1',
      cost,
    });
  }
  return out;
}

export interface DiagnosisResult {
  readonly code: string;
  readonly name: string;
  readonly admissions: number;
  readonly patients: number;
  /** null when suppressed (fewer than MIN_GROUP_PATIENTS patients). */
  readonly meanLengthOfStayDays: number | null;
  readonly readmissionRate30d: number | null;
  readonly meanCostEur: number | null;
}

export interface JointResults {
  readonly hospitals: number;
  readonly admissions: number;
  readonly distinctPatients: number;
  readonly patientsAtAllHospitals: number;
  readonly patientsAtExactlyTwo: number;
  readonly byDiagnosis: readonly DiagnosisResult[];
  readonly readmissionRate: {
    readonly patientsAtSeveralHospitals: number | null;
    readonly patientsAtOneHospital: number | null;
  };
  readonly minGroupPatients: number;
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Computes the joint aggregates over every party's admissions. */
export function computeJointResults(data: Readonly<Record<Party, readonly Admission[]>>): JointResults {
  const hospitalsOf = new Map<string, Set<Party>>();
  for (const party of PARTIES) {
    for (const a of data[party]) {
      const s = hospitalsOf.get(a.patientId) ?? new Set<Party>();
      s.add(party);
      hospitalsOf.set(a.patientId, s);
    }
  }
  const all = PARTIES.flatMap((p) => data[p]);
  const byDiagnosis = DIAGNOSES.map((d): DiagnosisResult => {
    const rows = all.filter((a) => a.diagnosis === d.code);
    const patients = new Set(rows.map((a) => a.patientId)).size;
    const shown = patients >= MIN_GROUP_PATIENTS;
    const mean = (f: (a: Admission) => number) => rows.reduce((s, a) => s + f(a), 0) / rows.length;
    return {
      code: d.code,
      name: d.name,
      admissions: shown ? rows.length : 0,
      patients: shown ? patients : 0,
      meanLengthOfStayDays: shown
        ? round(
            mean((a) => a.lengthOfStay),
            2,
          )
        : null,
      readmissionRate30d: shown
        ? round(
            mean((a) => (a.readmitted ? 1 : 0)),
            4,
          )
        : null,
      meanCostEur: shown ? Math.round(mean((a) => a.cost)) : null,
    };
  });
  const rate = (rows: readonly Admission[]): number | null => {
    const patients = new Set(rows.map((a) => a.patientId)).size;
    if (patients < MIN_GROUP_PATIENTS) return null;
    return round(rows.filter((a) => a.readmitted).length / rows.length, 4);
  };
  const several = (a: Admission) => (hospitalsOf.get(a.patientId)?.size ?? 0) > 1;
  const counts = [...hospitalsOf.values()].map((s) => s.size);
  return {
    hospitals: PARTIES.length,
    admissions: all.length,
    distinctPatients: hospitalsOf.size,
    patientsAtAllHospitals: counts.filter((n) => n === PARTIES.length).length,
    patientsAtExactlyTwo: counts.filter((n) => n === 2).length,
    byDiagnosis,
    readmissionRate: {
      patientsAtSeveralHospitals: rate(all.filter(several)),
      patientsAtOneHospital: rate(all.filter((a) => !several(a))),
    },
    minGroupPatients: MIN_GROUP_PATIENTS,
  };
}

/**
 * The output guard: the serialized result must hold no patient id (P + digits) and no admission id; the workload
 * refuses to emit it otherwise.
 * @throws DatasetError DATASET_INVALID
 */
export function checkAggregatesOnly(results: JointResults): string {
  const text = JSON.stringify(results);
  if (/P\d{6}|[ABC]-\d{6}/.test(text)) {
    throw new DatasetError('the result contains a record identifier; refusing to emit it');
  }
  return text;
}
