/* Placeholder translation unit for modules without sources yet. */
typedef int kiln_empty_unit;
