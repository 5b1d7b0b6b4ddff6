/*
 * A test-only stand-in for Windows' bcryptprimitives.dll, which wine 8.0 (Debian 12)
 * does not have: Go 1.24 and later read random bytes from its ProcessPrng, so a Go
 * program for Windows stops at start without it. This one gets them from advapi32's
 * RtlGenRandom (SystemFunction036), which wine has. TestWindowsLauncherUnderWine
 * builds it with mingw-w64 into the throwaway wine prefix's system32; nothing of it
 * ships.
 */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE buf, SIZE_T n)
{
	while (n > 0) {
		ULONG chunk = n > 0x40000000 ? 0x40000000 : (ULONG)n;
		if (!RtlGenRandom(buf, chunk))
			return FALSE;
		buf += chunk;
		n -= chunk;
	}
	return TRUE;
}
