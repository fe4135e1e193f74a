// The session page's recording player: choosing a turn of the transcript (the
// turn itself or its ▶ button) plays the recording from where that turn began.
const player = document.getElementById("recording-player");
const transcript = document.getElementById("transcript");

if (player && transcript) {
  transcript.addEventListener("click", (event) => {
    const turn = event.target.closest("[data-seek]");
    if (!turn) return;
    player.currentTime = Number(turn.dataset.seek);
    // A browser may refuse to start playback by itself; the position is set anyway.
    player.play().catch(() => {});
    for (const other of transcript.querySelectorAll(".bubble.playing")) {
      other.classList.remove("playing");
    }
    turn.classList.add("playing");
  });
}
