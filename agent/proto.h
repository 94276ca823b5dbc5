/* proto.h — the host–agent wire protocol and PROTOCOL_VERSION (RUNNER.md).
 * Placeholder: the agent task fills in the message shapes and codec. */
#ifndef PROVIUM_PROTO_H
#define PROVIUM_PROTO_H

/* Pins the wire shape of the host–agent protocol AND the event stream.
 * Bump when a field is removed, renamed or changes type, or a message changes
 * meaning (docs/protocol.md). */
#define PROTOCOL_VERSION 1

#endif
