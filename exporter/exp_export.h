/* exp_export: the export endpoint's housekeeping beside its handler (in
 * exp_api_int.h). Private to exporter/. */
#ifndef EXP_EXPORT_H
#define EXP_EXPORT_H

/* Removes the xlsx work files (licmon-export-*.xlsx) a killed exporter
 * left in dir. */
void exp_export_sweep(const char *dir);

#endif
