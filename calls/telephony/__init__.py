"""Phone calls: audio in the phone network's format and the Twilio webhooks and REST calls.

``audio`` converts between the pipeline's PCM16 and G.711 μ-law at 8 kHz;
``twilio`` answers Twilio's webhooks, places and hangs up calls, and issues
the token the Media Streams socket checks. docs/telephony.md is the operator's
guide.
"""
