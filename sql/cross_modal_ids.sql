-- Sentence ids each language has in BOTH modalities, per model (the cross-modal key).
WITH ids AS (
    SELECT DISTINCT model, modality, lang, sentence_id FROM activations
)
SELECT s.model, s.lang, COUNT(*) AS ids_with_speech_and_text
FROM ids AS s
JOIN ids AS t
  ON s.model = t.model AND s.lang = t.lang AND s.sentence_id = t.sentence_id
WHERE s.modality = 'speech' AND t.modality = 'text'
GROUP BY s.model, s.lang
ORDER BY s.model, s.lang
