"""Model backends: embedded llama.cpp, a LAN server, and scripted replay, behind one contract."""
