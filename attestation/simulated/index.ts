/**
 * Simulated attestors (design §2, style §14): the real Nitro and SEV-SNP formats under generated CA chains, so the
 * same verifier path checks real and simulated evidence. Their roots are trusted only when configured.
 */
export * from './nitro.js';
export * from './sev-snp.js';
