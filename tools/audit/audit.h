/* audit.h - the auditors' view of the log: query, verify, export,
 * verify-export, report (docs/audit.md). */
#ifndef MMO_AUDIT_H
#define MMO_AUDIT_H

int cmd_audit(int argc, char **argv);

#endif
