"""Reply-safety phrase tables, per language: data the reader can extend (rule 11).

Each table maps a language code to regular-expression fragments. `core.hygiene` compiles
them once into one alternation per category and matches them against a *normalised*,
case-folded copy of each sentence (NFKC, straight quotes, no zero-width or bidi characters,
no markdown emphasis, single spaces), so a fragment is written in lower case with straight
apostrophes. `{owner}` stands for the owner's name (and its first word); `{me}` for the
assistant's. Hebrew and Arabic attach prefixes to words, so their fragments carry no leading
word boundary.

Categories:

- `COMMITMENTS`: a sentence that commits the owner (or the assistant for him) to a meeting, a
  time, a payment, attendance, a booking or a deal. Dropped from the reply.
- `AI_DISCLOSURES`: the reply says it is an AI, a language model or a bot. Dropped.
- `REFUSALS`: a model refusal ("I can't help with that"). Dropped.
- `INSTRUCTION_TALK`: the reply talks about its instructions or the system prompt, or
  addresses itself as the system prompt does ("You are Dana, the assistant..."). Dropped.

Adding a language: add its code to every table with a few fragments, and example replies
both ways to `tests/data/replies/corpus.json`.
"""

from __future__ import annotations

_SUBJ = r"(?:i|we|he|she|they|{owner})"
_WILL = r"(?:'ll|\s+will|\s+shall|\s+(?:is|am|are)\s+going\s+to|\s+(?:is|am|are|would\s+be)\s+(?:happy|glad|willing)\s+to)"

COMMITMENTS: dict[str, tuple[str, ...]] = {
    "en": (
        _SUBJ + _WILL + r"\s+(?:definitely\s+|surely\s+|certainly\s+|absolutely\s+|gladly\s+)?"
        r"(?:be there|be at|be on time|meet|see you|pay|transfer|send you|wire|lend|sign|come|"
        r"attend|join|pick you up|bring|drive you|do it|do the|take care of|cover|reimburse|"
        r"give you|refund|book|accept|agree|call you (?:at|by|on|tomorrow|tonight))\b",
        r"\b(?:{owner}|he|she)\s+(?:accepts|agrees|approves|confirms|meets you|pays|will be there)\b",
        r"\b(?:it'?s|it is|that'?s|that is|everything'?s|everything is|all)\s+"
        r"(?:a deal|confirmed|booked|settled|arranged|set|agreed)\b",
        r"\b(?:is|are|has been|have been)\s+(?:now\s+)?(?:confirmed|booked|reserved|approved|accepted)\b",
        r"^deal\b",
        r"\b(?:{owner}|he|she)(?:'s| is) (?:coming|going) to\b",
        r"\b(?:i|we|he|she|{owner})(?:'ll| will) (?:handle|sort out|take care of)\b",
        r"\bconsider it done\b",
        r"\bcount (?:him|me|us|them|{owner}) in\b",
        r"\bsee you (?:at|on|tomorrow|tonight|then|there)\b",
        r"\b(?:i|we|he|she|{owner})\s+promises?\b",
        r"\b(?:i|we|he|she|{owner})(?:'ve|\s+have|\s+has|'s)\s+(?:already\s+)?(?:booked|confirmed|"
        r"scheduled|accepted|agreed|arranged|reserved|paid|transferred)\b",
    ),
    "de": (
        r"\b(?:ich|wir|er|sie|{owner})\s+(?:werde|werden|wird)\b[^.]*\b(?:da sein|dort sein|kommen|"
        r"treffen|zahlen|bezahlen|uberweisen|überweisen|unterschreiben|vorbeikommen|abholen)\b",
        r"\b(?:er|sie|{owner})\s+(?:trifft|zahlt|bezahlt|uberweist|überweist|unterschreibt|holt)\s",
        r"\bkommt\s+(?:auf jeden fall\s+|sicher\s+|bestimmt\s+|gerne?\s+)?(?:zur|zum|zu dir|vorbei|mit)\b",
        r"\b(?:ist|sind|wurde|wurden)\s+(?:fest\s+)?(?:bestatigt|bestätigt|gebucht|reserviert)\b",
        r"\babgemacht\b",
        r"\bist dabei\b",
        r"\bbis (?:morgen|heute abend|gleich|dann)\s+um\b",
        r"\bkommt\b[^.]*\bvorbei\b",
        r"\b(?:ich verspreche|versprochen)\b",
    ),
    "es": (
        r"\b(?:estare|estaré|estara|estará|estaremos)\s+(?:alli|allí|ahi|ahí|alla|allá)\b",
        r"\b(?:te|le|os|les)\s+(?:vera|verá|vere|veré|pagara|pagará|pagare|pagaré|recogera|recogerá)\b",
        r"\b(?:pagara|pagará|pagare|pagaré|ira|irá|ire|iré|firmara|firmará|asistira|asistirá|vendra|vendrá|vendre|vendré)\b",
        r"\b(?:confirmad[oa]s?|reservad[oa]s?)\b",
        r"\btrato hecho\b",
        r"\b(?:estará|estara|estaré|estare)\s+en\b",
        r"\bnos vemos\s+(?:a|el|mañana|manana|esta|en)\b",
        r"\b(?:te lo prometo|prometo)\b",
    ),
    "fr": (
        r"\b(?:serai|sera|serons)\s+(?:la|là|présent|present)\b",
        r"\b(?:te|vous)\s+(?:retrouvera|retrouverai|verra|verrai|paiera|paierai|rembourser[ao]i?)\b",
        r"\b(?:paiera|paierai|viendra|viendrai|signera|signerai|virera|virerai)\b",
        r"\b(?:confirmée?s?|confirmee?s?|réservée?s?|reservee?s?)\b",
        r"\bmarché conclu\b",
        r"\b(?:sera|serai)\s+(?:à|au|aux)\b",
        r"\bc'est d'accord\b",
        r"\bpartant\b",
        r"\bà (?:demain|ce soir|tout à l'heure) à\b",
        r"\b(?:je (?:vous|te) le promets|promis)\b",
    ),
    "pt": (
        r"\b(?:estarei|estará|estara)\s+(?:lá|la|aí|ai|ali)\b",
        r"\b(?:vai|vou|vamos)\s+(?:te\s+|lhe\s+|você\s+)?(?:encontrar|pagar|transferir|buscar|assinar|comparecer)\b",
        r"\b(?:confirmad[ao]s?|reservad[ao]s?)\b",
        r"\bfechado\b",
        r"\b(?:vai|vou) estar (?:na|no|em|lá|aí)\b",
        r"\baté (?:amanhã|logo|mais) às\b",
        r"\bpode contar com (?:ele|ela|{owner})\b",
        r"\btopa\b",
        r"\bprometo\b",
    ),
    "it": (
        r"\b(?:sarò|saro|sarà|sara|saremo)\s+(?:lì|li|là|la|presente)\b",
        r"\b(?:ti|vi)\s+(?:incontrerà|incontrero|incontrerò|pagherà|pagherò|vedrà|vedrò)\b",
        r"\b(?:pagherà|pagherò|verrà|verrò|firmerà|firmerò)\b",
        r"\b(?:confermat[aoie]|prenotat[aoie])\b",
        r"\baffare fatto\b",
        r"\b(?:sarà|sara|sarò|saro)\s+(?:a|al|alla|alle|allo)\b",
        r"\bci vediamo\s+(?:alle|domani|stasera|lì|li)\b",
        r"\bprometto\b",
    ),
    "nl": (
        r"\b(?:ik|hij|zij|ze|we|wij|{owner})\s+(?:ben|is|zijn)\s+er\s+(?:om|morgen|zeker|op tijd)\b",
        r"\b(?:ziet|betaalt|betaal|tekent|haalt)\s+(?:je|u|jullie)\b",
        r"\bkomt\s+(?:zeker\s+|wel\s+|morgen\s+|graag\s+)?(?:naar|langs)\b",
        r"\b(?:bevestigd|gereserveerd|geboekt|afgesproken)\b",
        r"\bdoet mee\b",
        r"\btot (?:morgen|straks|vanavond) om\b",
        r"\b(?:ik beloof|beloofd)\b",
    ),
    "he": (
        r"(?:אהיה|יהיה|תהיה|נהיה) שם",
        r"(?:ייפגש|יפגוש|אפגוש|ניפגש|נפגש איתך)",
        r"(?:ישלם|אשלם|ישלמו|יעביר לך את הכסף|אעביר לך את הכסף)",
        r"(?:אושר|אושרה|מאושר|מאושרת|הוזמן|הוזמנה)\b",
        r"(?:סגרנו|סגור!|עסקה)",
        r"נתראה",
        r"{owner} בפנים",
        r"(?:יבוא|יגיע|אבוא|אגיע|נגיע)(?:\s|$|[.,!])",
        r"(?:מבטיח|מבטיחה|מבטיחים)",
    ),
    "ar": (
        r"(?:سأكون|سيكون) (?:هناك|في)",
        r"(?:سيقابلك|سأقابلك|سيلتقي بك|سألتقي بك)",
        r"(?:سيدفع|سأدفع|سيحول|سأحول)",
        r"(?:تم تأكيد|مؤكد|تم حجز)",
        r"اتفقنا",
        r"(?:أراك|نراك)",
        r"(?:سيحضر|سأحضر|سآتي|سيأتي)",
        r"(?:أعدك|أعدكم)",
    ),
    "ru": (
        r"\b(?:буду|будет|будем)\s+(?:там|на месте|вовремя)\b",
        r"\b(?:встретится|встречусь|встретимся)\s+с\b",
        r"\b(?:заплатит|заплачу|переведёт|переведет|переведу|оплатит|оплачу)\b",
        r"\b(?:подтвержден[аоы]?|забронирован[аоы]?)\b",
        r"\bдоговорились\b",
        r"\bв деле\b",
        r"\b(?:будет|буду)\s+на\b",
        r"\bувидимся\b",
        r"\b(?:придёт|придет|приду)\s+(?:на|в|к)\b",
        r"\bобещаю\b",
    ),
}

AI_DISCLOSURES: dict[str, tuple[str, ...]] = {
    "en": (
        r"\bas an? (?:ai|a\.i\.|artificial intelligence|(?:large )?language model|llm|chatbot|bot|"
        r"virtual assistant|ai assistant|ai language model|machine|computer program)\b",
        r"\b(?:i'm|i am|im)\s+(?:just |only |merely |not a human,? )?(?:an? )?(?:ai|artificial "
        r"intelligence|(?:large )?language model|llm|chatbot|bot|computer program|ai assistant|"
        r"ai language model|machine)\b",
        r"\bbeing an? (?:ai|artificial intelligence|language model|chatbot|bot)\b",
        r"\btrained by (?:meta|openai|google|anthropic)\b",
        r"\b(?:language model|llm|chatgpt|openai)\b",
    ),
    "de": (
        r"\bals (?:eine? )?(?:ki|künstliche intelligenz|sprachmodell|ki-assistent(?:in)?|chatbot)\b",
        r"\bich bin (?:nur |lediglich )?(?:eine? )?(?:ki|künstliche intelligenz|sprachmodell|chatbot|bot)\b",
        r"\b(?:sprachmodell|künstliche intelligenz)\b",
    ),
    "es": (
        r"\bcomo (?:una? )?(?:ia|inteligencia artificial|modelo de lenguaje|asistente de ia|chatbot)\b",
        r"\bsoy (?:solo |sólo |solamente )?(?:una? )?(?:ia|inteligencia artificial|modelo de lenguaje|chatbot|bot)\b",
        r"\b(?:modelo de lenguaje|inteligencia artificial)\b",
    ),
    "fr": (
        r"\ben tant qu(?:e |')(?:une? )?(?:ia|intelligence artificielle|modèle de langage|chatbot)\b",
        r"\bje (?:ne )?suis (?:qu'|que )?(?:juste |seulement )?(?:une? )?(?:ia|intelligence artificielle|"
        r"modèle de langage|chatbot|bot)\b",
        r"\b(?:modèle de langage|intelligence artificielle)\b",
    ),
    "pt": (
        r"\bcomo (?:uma? )?(?:ia|inteligência artificial|modelo de linguagem|chatbot)\b",
        r"\bsou (?:apenas |só )?(?:uma? )?(?:ia|inteligência artificial|modelo de linguagem|chatbot|bot)\b",
        r"\b(?:modelo de linguagem|inteligência artificial)\b",
    ),
    "it": (
        r"\bcome (?:una? )?(?:ia|intelligenza artificiale|modello (?:linguistico|di linguaggio)|chatbot)\b",
        r"\bsono (?:solo |soltanto )?(?:una? )?(?:ia|intelligenza artificiale|modello "
        r"(?:linguistico|di linguaggio)|chatbot|bot)\b",
        r"\b(?:modello linguistico|intelligenza artificiale)\b",
    ),
    "nl": (
        r"\bals (?:een )?(?:ai|ki|kunstmatige intelligentie|taalmodel|chatbot)\b",
        r"\bik ben (?:maar |slechts |alleen )?(?:een )?(?:ai|ki|kunstmatige intelligentie|taalmodel|chatbot|bot)\b",
        r"\b(?:taalmodel|kunstmatige intelligentie)\b",
    ),
    "he": (r"בינה מלאכותית", r"מודל שפה", r"אני (?:רק )?(?:בוט|צ'אטבוט)"),
    "ar": (r"ذكاء اصطناعي", r"الذكاء الاصطناعي", r"نموذج (?:لغوي|لغة)", r"روبوت محادثة"),
    "ru": (
        r"\bискусственн\w* интеллект",
        r"\bязыков\w* модел",
        r"\b(?:как|я)\s+(?:всего лишь\s+|лишь\s+|просто\s+)?ии\b",
        r"\bчат-?бот",
    ),
}

REFUSALS: dict[str, tuple[str, ...]] = {
    "en": (
        r"^(?:i'?m sorry,?\s*(?:but\s+)?|sorry,?\s*(?:but\s+)?)?i (?:can(?:no|')t|cannot|am unable to|"
        r"won't|am not able to) (?:help|assist)(?: you)? with (?:that|this)\b",
        r"\bi (?:can(?:no|')t|cannot) (?:fulfill|comply with|process) (?:that|this|your) request\b",
        r"\bi (?:could not|couldn't|can't|cannot|was unable to|am unable to) (?:generate|produce|create)\b",
    ),
    "de": (
        r"\b(?:dabei|damit) kann ich (?:dir |ihnen )?nicht helfen\b",
        r"\bich kann (?:dir |ihnen )?(?:dabei |damit )?nicht helfen\b",
    ),
    "es": (r"\bno puedo ayudar(?:te|le)? con (?:eso|esto)\b",),
    "fr": (r"\bje ne peux pas (?:vous |t')?aider (?:avec|pour|sur) (?:ça|cela)\b",),
    "pt": (r"\bnão posso ajudar com (?:isso|isto)\b",),
    "it": (r"\bnon posso aiutar(?:ti|la|vi)? con (?:questo|ciò)\b",),
    "nl": (
        r"\bdaar kan ik (?:je |u )?niet mee helpen\b",
        r"\bik kan (?:je |u )?daar niet mee helpen\b",
    ),
    "he": (r"לא (?:יכול|יכולה) לעזור (?:בזה|עם זה)",),
    "ar": (r"(?:لا أستطيع|لا يمكنني) المساعدة في (?:ذلك|هذا)",),
    "ru": (r"\bне могу (?:с этим )?помочь(?: с этим)?\b",),
}

INSTRUCTION_TALK: dict[str, tuple[str, ...]] = {
    "en": (
        r"\b(?:my|the)\s+(?:instructions|guidelines|system prompt|directives|programming)\b",
        r"\bmy (?:rules|prompt)\b",
        r"\bas (?:instructed|i was told)\b",
        r"\bi (?:must|have to|should) (?:keep|never|always)\b[^.]*\b(?:replies|answers|mention)\b",
        r"\bsystem prompt\b",
        r"\bi (?:was|am|have been|'ve been|'m) (?:told|instructed|programmed|not allowed|supposed) to\b",
        r"\byou(?:'re| are) (?:\w+,? )?(?:the |a |an )?(?:personal |virtual )?assistant of\b",
        r"\byou(?:'re| are) {me}\b",
    ),
    "de": (
        r"\bmeine (?:anweisungen|instruktionen|vorgaben|regeln)\b",
        r"\bsystem-?prompt\b",
        r"\bdu bist {me}\b",
    ),
    "es": (r"\bmis (?:instrucciones|reglas|directrices)\b", r"\beres {me}\b"),
    "fr": (r"\bmes (?:instructions|consignes|règles)\b", r"\b(?:tu es|vous êtes) {me}\b"),
    "pt": (r"\bminhas (?:instruções|regras|diretrizes)\b", r"\b(?:você é|tu és) {me}\b"),
    "it": (r"\b(?:le )?mie (?:istruzioni|regole|direttive)\b", r"\bsei {me}\b"),
    "nl": (r"\bmijn (?:instructies|regels|richtlijnen)\b", r"\b(?:jij|je) bent {me}\b"),
    "he": (r"(?:ההוראות|ההנחיות) שלי", r"(?:^|\s)(?:את|אתה) \S+,? (?:העוזר|העוזרת)"),
    "ar": (r"(?:تعليماتي|إرشاداتي|التعليمات الخاصة بي)", r"أنت \S+[،,]? (?:المساعدة|المساعد)"),
    "ru": (
        r"\bмо(?:и|им|ими) (?:инструкци|правил|указани)",
        r"\bинструкции запрещают\b",
        r"\b(?:ты|вы) \w+,? (?:\w+ )?(?:помощни|ассистент)",
    ),
}

# The words a contact-chosen display name or group title may not carry into the system prompt:
# the vocabulary of prompt injection, in the same languages (see core.context.safe_label).
_INJECTION_LINES = (
    "system prompt instruction instructions ignore ignoring disregard forget override overrides",
    "reveal confirm confirmed promise pretend act jailbreak admin administrator developer mode",
    "rule rules assistant ai bot model llm you your must now allowed",
    "anweisung anweisungen ignoriere vergiss regeln bestätige",
    "instrucciones ignora olvida reglas confirma",
    "consignes ignore ignorez oublie règles confirme",
    "instruções ignore esqueça regras confirme",
    "istruzioni ignora dimentica regole conferma",
    "instructies negeer vergeet regels bevestig",
    "הוראות התעלם תתעלם שכח מערכת אשר",
    "تعليمات تجاهل انس نظام أكد",
    "инструкции игнорируй забудь система правила подтверди",
)
INJECTION_WORDS: frozenset[str] = frozenset(w for line in _INJECTION_LINES for w in line.split())

LANGUAGES: tuple[str, ...] = tuple(COMMITMENTS)
