/** Sampling: the sampler chain and its seeded generator. */
export { Sampler, createSampler, resolveSamplerOptions, SAMPLER_OPTION_KEYS } from './sampler.js';
export type { SamplerOptions, ResolvedSamplerOptions, LogitProcessor } from './sampler.js';
export { Xoshiro128, randomSeed } from './prng.js';
