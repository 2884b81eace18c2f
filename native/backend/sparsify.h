// Activation sparsification of one row (Backend::sparsify): zero the k entries of smallest
// magnitude. The order is that of the bits of |x| as an unsigned integer (the magnitude
// order for every non-NaN value; NaN ranks above infinity), ties broken by index (the
// lower index is zeroed first), so exactly k entries become +0.0f and the result is
// deterministic. Entries already zero rank lowest.
#pragma once
#include <cstdint>

namespace sparrow {

// The entries to zero in a row of `width` for a fraction `frac` of it: floor(frac * width),
// clamped to [0, width].
int sparsify_count(float frac, int width);

// The fast route: a radix select on the magnitude bits (11, 10 and 11 bits; the later
// passes only over the entries that share the earlier digits), then one pass that zeroes
// what ranks below the k-th. `scratch` holds at least `width` values.
void sparsify_row(float* x, int width, int k, uint32_t* scratch);

// The plain reference twin: sorts the indices by (magnitude bits, index) and zeroes the first k.
void sparsify_row_reference(float* x, int width, int k);

}  // namespace sparrow
