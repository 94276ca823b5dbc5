/* agentconn.h — the host side of one host–agent connection (agent/proto.h,
 * docs/protocol.md). Never blocks: requests are queued and written as the socket
 * accepts them; agentconn_pump() reads what is available, completes the hello
 * handshake, and hands every reply/stream frame to a callback. Blocking waits are
 * written in Lua on top of the scheduler (lua/vm.lua).
 *
 * Lua side (pv_luaopen_agentconn): provium._c_agent.connect(fd, vmname) → AgentConn with
 *   c:send(op, args) → id           c:send_stream(id, stream, data)   c:send_eof(id, stream)
 *   c:pump() → frames handled (raises `closed`/`protocol` when the connection is gone)
 *   c:reply(id) → reply table or nil (taken)   c:stream(id, name) → data, eof (taken)
 *   c:forget(id)   c:ready()   c:fd()   c:want_write()   c:close()   c:closed() → reason|nil */
#ifndef PROVIUM_AGENTCONN_H
#define PROVIUM_AGENTCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/proto.h"

struct agentconn;

/* Takes ownership of fd (made non-blocking) and queues the host's hello. */
int agentconn_new(int fd, const char *vmname, struct agentconn **out);
/* A connection whose handshake is already done (a stream a snapshot carried, whose
 * hellos both went before the snapshot): ready at once, no hello sent. */
int agentconn_adopt(int fd, const char *vmname, struct agentconn **out);
void agentconn_free(struct agentconn *c);

int agentconn_fd(const struct agentconn *c);
/* true once the agent's hello arrived with a matching version. */
bool agentconn_ready(const struct agentconn *c);
/* NULL while the connection is usable; else why it is not (closed, version mismatch). */
const char *agentconn_error(const struct agentconn *c);
/* true if the peer closed / the connection failed (agentconn_error says why). */
bool agentconn_closed(const struct agentconn *c);
/* true when a version mismatch ended the handshake. */
bool agentconn_protocol_error(const struct agentconn *c);

/* The next request id (ids start at 1; 0 is the agent's "no request"). */
uint64_t agentconn_next_id(struct agentconn *c);
/* Queues a finished frame (pv_fbuf_finish'ed bytes) and writes as much as the socket
 * takes. Returns 0 or -errno. */
int agentconn_queue(struct agentconn *c, const void *frame, size_t len);
/* Writes queued bytes. Returns 0 when all are out, 1 when some remain, -errno. */
int agentconn_flush(struct agentconn *c);
bool agentconn_want_write(const struct agentconn *c);

/* Called for every frame after the hello (replies, stream and eof frames). */
typedef void (*agentconn_frame_cb)(void *ud, const struct pv_frame *f);
/* Flushes, then reads everything available and dispatches complete frames. Returns
 * the number of frames handled (>= 0), or -errno once the connection is closed or
 * broken (agentconn_error says why; frames before the close are still delivered). */
int agentconn_pump(struct agentconn *c, agentconn_frame_cb cb, void *ud);

#endif
