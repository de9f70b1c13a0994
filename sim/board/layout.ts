/**
 * Where the fields the rig reads sit in the stock runtime's structures in RAM (DeviceScript v2.16.0
 * for the RP2040, 32-bit: devs_internal.h, devs_objects.h, gc_alloc.c; offsets from offsetof with
 * its build flags). The profiler (profile.ts) and the heap watch (heap.ts) read the VM through them.
 */

/** devs_ctx_t: the image, the current activation */
export const CTX_IMG = 228
export const CTX_CURR_FN = 232
/** devs_activation_t: the caller's activation, the function descriptor */
export const ACT_CALLER = 12
export const ACT_FUNC = 16
/** devs_gc_t: first_free, first_chunk, num_alloc, gc_threshold, curr_alloc, ctx */
export const GC_FIRST_CHUNK = 4
export const GC_CURR_ALLOC = 16
export const GC_CTX = 20
/** chunk_t: next, end, then the first block */
export const CHUNK_END = 4
export const CHUNK_START = 8
/** devs_map_t: header, proto, length (16 bits), capacity (16 bits), data (devs_short_map_t and devs_array_t keep their data pointer at the same place) */
export const MAP_PROTO = 4
export const MAP_LENGTH = 8
export const MAP_CAPACITY = 10
export const MAP_DATA = 12
/** devs_string_t (an ASCII string in the heap): its length (16 bits), then its bytes */
export const STR_LENGTH = 4
export const STR_DATA = 6
/** devs_img_header_t: the ASCII and UTF-8 string tables and the string data, each a section (start, length) */
export const IMG_ASCII_STRINGS = 32 + 4 * 8
export const IMG_UTF8_STRINGS = 32 + 5 * 8
export const IMG_STRING_DATA = 32 + 7 * 8
