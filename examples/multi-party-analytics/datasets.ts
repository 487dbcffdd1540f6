/**
 * Synthetic hospital admission datasets for the multi-party analytics demo: three hospitals, each with thousands
 * of admissions, whose patients partly overlap (the same pseudonymous patient id at several hospitals — the
 * question none of them can answer alone).
 *
 * The data is generated from a seeded PRNG (mulberry32) so that every run — and the e2e test — sees the same
 * datasets and the same joint results. It is test data, not cryptography: nothing here draws key material.
 */

export const PARTIES = ['hospital-a', 'hospital-b', 'hospital-c'] as const;
export type Party = (typeof PARTIES)[number];

export const CSV_HEADER = [
  'admission_id',
  'patient_id',
  'age',
  'sex',
  'region',
  'diagnosis',
  'admitted_on',
  'length_of_stay_days',
  'readmitted_30d',
  'cost_eur',
] as const;

/** ICD-10 groups with a typical length of stay and 30-day readmission rate. */
export const DIAGNOSES = [
  { code: 'I21', name: 'acute myocardial infarction', stay: 6, readmit: 0.14, cost: 11_000 },
  { code: 'I50', name: 'heart failure', stay: 8, readmit: 0.22, cost: 9_500 },
  { code: 'J18', name: 'pneumonia', stay: 5, readmit: 0.12, cost: 6_200 },
  { code: 'E11', name: 'type 2 diabetes', stay: 4, readmit: 0.09, cost: 4_800 },
  { code: 'N18', name: 'chronic kidney disease', stay: 7, readmit: 0.19, cost: 8_700 },
  { code: 'C50', name: 'breast cancer', stay: 3, readmit: 0.07, cost: 14_500 },
  { code: 'S72', name: 'hip fracture', stay: 11, readmit: 0.16, cost: 12_800 },
] as const;

const REGIONS = ['north', 'south', 'east', 'west', 'central'] as const;

/** mulberry32: a small, fast, seeded PRNG (not cryptographic; test data only). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DatasetOptions {
  /** Admissions per hospital (default 4000). */
  readonly rows?: number;
  readonly seed?: number;
}

interface Patient {
  readonly id: string;
  readonly age: number;
  readonly sex: 'F' | 'M';
  readonly region: string;
  readonly diagnosis: (typeof DIAGNOSES)[number];
}

/**
 * Generates the three CSV files (header line, then one admission per line, LF line ends).
 * Patients: a shared pool; about 12 % of each hospital's patients also appear at both others, about 20 % at one
 * other, the rest only there.
 */
export function generateDatasets(options: DatasetOptions = {}): Record<Party, string> {
  const rows = options.rows ?? 4000;
  const random = prng(options.seed ?? 2026);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  let nextPatient = 100_000;
  const newPatient = (): Patient => {
    const diagnosis = pick(DIAGNOSES);
    return {
      id: `P${nextPatient++}`,
      age: 18 + Math.floor(random() * 75),
      sex: random() < 0.5 ? 'F' : 'M',
      region: pick(REGIONS),
      diagnosis,
    };
  };
  // Patients per hospital: roughly rows / 1.4 (some have several admissions).
  const perHospital = Math.max(10, Math.round(rows / 1.4));
  const sharedByAll = Array.from({ length: Math.round(perHospital * 0.12) }, newPatient);
  const sharedPairs = PARTIES.map(() => Array.from({ length: Math.round(perHospital * 0.1) }, newPatient));
  const out = {} as Record<Party, string>;
  PARTIES.forEach((party, i) => {
    // Pair i is shared by hospital i and i+1 (mod 3): each hospital is in two pairs.
    const own = Array.from(
      { length: Math.max(1, perHospital - sharedByAll.length - 2 * (sharedPairs[0]?.length ?? 0)) },
      newPatient,
    );
    const patients = [...sharedByAll, ...(sharedPairs[i] ?? []), ...(sharedPairs[(i + 2) % 3] ?? []), ...own];
    const lines: string[] = [CSV_HEADER.join(',')];
    for (let r = 0; r < rows; r++) {
      // The first pass admits every patient once; the rest are repeat admissions.
      const p = r < patients.length ? (patients[r] as Patient) : pick(patients);
      const d = random() < 0.85 ? p.diagnosis : pick(DIAGNOSES);
      const stay = Math.max(1, Math.round(d.stay * (0.4 + random() * 1.2) + (p.age > 75 ? 2 : 0)));
      const readmitted = random() < d.readmit * (p.age > 75 ? 1.4 : 1) ? 1 : 0;
      const cost = Math.round(d.cost * (0.6 + random() * 0.8) + stay * 350);
      const day = 1 + Math.floor(random() * 365);
      const date = new Date(Date.UTC(2025, 0, day)).toISOString().slice(0, 10);
      lines.push(
        [
          `${party.slice(-1).toUpperCase()}-${String(r + 1).padStart(6, '0')}`,
          p.id,
          p.age,
          p.sex,
          p.region,
          d.code,
          date,
          stay,
          readmitted,
          cost,
        ].join(','),
      );
    }
    out[party] = `${lines.join('\n')}\n`;
  });
  return out;
}
