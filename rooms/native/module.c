/* rooms._native: the per-packet work of the media path, in C. Each piece is in its own file:
 * rate.c (the REMB estimate), jitter.c (the recording's jitter buffer, VP8 depacketizing),
 * srtp.c (libsrtp without pylibsrtp's wrapper), leg.c (an RTP leg's packets and NACK cache, and
 * the forwarding of a packet to every leg), sink.c (sending on a DTLS transport), stats.c (the
 * receive statistics and NACKs), inbound.c (a transport's datagrams, in C for the sources it
 * knows).
 * Built by pip with the project (setup.py); rooms/_native.pyi types it for mypy.
 */
#include "native.h"

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rooms._native",
    .m_doc = "The per-packet work of the media path, in C.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
    if (rate_add_to(module) < 0 || jitter_add_to(module) < 0 || srtp_add_to(module) < 0
            || leg_add_to(module) < 0 || sink_add_to(module) < 0
            || stats_add_to(module) < 0 || inbound_add_to(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
