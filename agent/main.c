/* main.c — the guest agent. Placeholder until the agent lands. */
int main(void) { return 0; }
